"""Build the Celery app from settings.

Nothing here reads the environment: ``create_app(settings)`` is the only way in,
so tests build an app from test settings and the CLI from the active profile.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from celery import Celery, Task, bootsteps
from celery._state import get_current_app, get_current_task
from celery.result import AsyncResult
from celery.worker.consumer import Consumer
from kombu import Exchange, Queue
from pydantic import SecretStr

from . import (
    embedded_broker,
    error_reporting,
    metrics,
    observability,
    payload_size,
    periodic,
    scheduling,
    tracing,
    worker_loss,
)
from .autoscale import AUTOSCALER
from .config import ConfigError, Settings, setting_problem
from .config.settings import TaskSettings
from .heartbeat import Heartbeat
from .queues import CPU_QUEUE as CPU_QUEUE  # re-exported: callers import it from here
from .queues import DEFAULT_QUEUE as DEFAULT_QUEUE  # re-exported as well
from .queues import QUEUES, UnknownQueueError, queue_limits
from .reconnect import RequeueAfterReconnect
from .resources import ResourceProvider, Resources
from .tasks import task_modules
from .tasks.typed import typed_tasks

# RabbitMQ moves messages a worker rejects (unknown task, malformed, failed for good)
# here instead of dropping them; nothing consumes it, so they wait for a person.
DEAD_LETTER_QUEUE = "dead_letter"
PACKAGE = __name__.rpartition(".")[0]


class ProjectCelery(Celery):
    """A Celery app that carries the settings and resources it was built with."""

    def __init__(self, settings: Settings, provider: ResourceProvider) -> None:
        # Every module of the tasks package: a new one needs no list to join.
        super().__init__(PACKAGE, include=task_modules(f"{PACKAGE}.tasks"))
        self.settings = settings
        self.provider = provider
        # The hard time limit of a task this process does not know (a publish by name):
        # the longest any queue gives, the worst case for the delay check.
        self.unknown_task_limit = max(
            queue_limits(settings.tasks, queue)[0].time_limit for queue in QUEUES
        )

    def send_task(self, name: str, *args: Any, **options: Any) -> AsyncResult[Any]:
        """Publish a task once ``check_publish`` has let it through.

        Every publish passes here (``delay``, ``apply_async``, canvases, retries).
        """
        self.check_publish(name, send_task_call(args, options))
        return super().send_task(name, *args, **options)

    def check_publish(self, name: str, call: Mapping[str, Any]) -> None:
        """Refuse, before anything is sent, oversize arguments and on Redis a delay run twice.

        ``call`` is ``send_task``'s arguments by name (``send_task_call``). Raises
        ``PayloadTooLargeError`` (payload_size.py) or ``DelayTooLongError`` (scheduling.py).
        """
        payload_size.check_payload(name, call, self.settings.tasks.max_payload_bytes)
        if self.settings.broker.is_redis:
            scheduling.check_publish(
                self,
                name,
                call,
                timeout=self.settings.broker.visibility_timeout,
                default_limit=self.unknown_task_limit,
            )


# send_task's parameters that may come by position after ``name``, in order: args,
# kwargs, countdown, eta, ... (Task.apply_async passes args and kwargs so).
_POSITIONAL = tuple(
    key
    for key, parameter in inspect.signature(Celery.send_task).parameters.items()
    if parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and key not in ("self", "name")
)


def send_task_call(args: tuple[Any, ...], options: dict[str, Any]) -> dict[str, Any]:
    """``send_task``'s arguments after ``name``, by name, whether given by position or not.

    ``check_publish`` reads the call from this one mapping. It runs on every publish:
    naming the positional arguments from a precomputed list costs under 1 µs, where
    ``inspect.Signature.bind`` took about 13 µs. A malformed call (too many arguments,
    one given twice) is left for Celery's own signature to refuse.
    """
    return dict(zip(_POSITIONAL, args, strict=False)) | options


def create_app(settings: Settings, provider: ResourceProvider | None = None) -> ProjectCelery:
    """A configured app; ``provider`` lets tests hand tasks fake clients."""
    _create_local_folders(settings)
    app = ProjectCelery(settings, provider or ResourceProvider(settings))
    app.conf.update(celery_config(settings))
    app.conf.task_routes = (OwnQueueRouter(app),)
    if settings.broker.is_amqp:
        app.steps["consumer"].add(DeclareDeadLetterQueue)
    if settings.broker.is_redis:
        app.steps["consumer"].add(RequeueAfterReconnect)
    app.steps["consumer"].add(Heartbeat)  # for `probe --liveness|--readiness`
    if settings.metrics.enabled:
        app.steps["worker"].add(metrics.MetricsServer)  # /metrics on the worker's port
    metrics.connect_signals()  # every publish carries its time, for the wait metric
    observability.connect_signals()
    observability.hide_task_data(not settings.log.task_data)
    worker_loss.connect_signals()
    tracing.connect_signals(settings)  # off by default; ConfigError if its extra is missing
    error_reporting.start(settings)  # off until sentry.dsn is set
    # Current in this thread and the default in every other: a task proxy such as
    # ``process_data.delay`` called from a thread would otherwise publish through
    # Celery's fallback app, to amqp://localhost.
    app.set_current()
    app.set_default()
    # Import the task modules now so per-task limits are known and checked at start-up.
    app.loader.import_default_modules()
    app.finalize()
    typed_tasks(app)  # refuses two typed tasks that callers would know by one name
    _check_queues(app)
    app.conf.beat_schedule = periodic.beat_schedule(app, settings)
    _check_time_limits(app)
    if settings.broker.is_redis:
        _check_visibility_timeout(app)
    return app


def current_resources() -> Resources:
    """The resources of the app running the current task (or of the current app)."""
    # A pool thread has no current app of its own, but the task it runs knows its app.
    task: Task[Any, Any] | None = get_current_task()
    app = task.app if task is not None else get_current_app()
    if not isinstance(app, ProjectCelery):
        raise RuntimeError("no app from create_app() is active; call create_app(settings) first")
    return app.provider.get()


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings derived from our settings, with the production lessons built in."""
    config: dict[str, Any] = {
        "broker_url": _secret_url(
            settings.broker.url, settings.broker.username, settings.broker.password
        ),
        "broker_transport_options": _transport_options(settings),
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": settings.broker.connection_timeout,
        # Retry a publish for about 10 s (a broker restart), then raise to the caller.
        "task_publish_retry_policy": {
            "max_retries": 12,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1,
        },
        "result_backend": _result_backend(settings),
        "result_expires": settings.results.expires,
        "result_extended": settings.results.extended,
        # JSON only: pickle on the wire lets a producer run code on the worker.
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "timezone": "UTC",
        "enable_utc": True,
        # At-least-once delivery: ack after the task ran, redeliver if the worker died
        # (worker_loss stops a task that kills its process every time).
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # A task that failed for good is rejected, so RabbitMQ dead-letters its message;
        # one killed by its time limit is acked, as running it again would hang again.
        "task_acks_on_failure": False,
        "task_acks_on_timeout": True,
        "worker_prefetch_multiplier": 1,
        # A lost connection means the broker will redeliver: stop the local copy
        # (on Redis, RequeueAfterReconnect makes that redelivery prompt).
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        # Time limits reach each task through this annotation, not task_time_limit:
        # Celery copies task_time_limit onto every task that set none before it applies
        # annotations, which would then not know which limits a task set itself.
        "task_annotations": [
            QueueTimeLimits(settings.tasks),
            worker_loss.WorkerLossLimit(
                settings.tasks.max_worker_losses, memory=settings.results.expires
            ),
        ],
        # No STARTED state per task: one more result-store write each, 15 to 21 % of a
        # short task's throughput (docs/performance.md). A long task whose callers poll
        # its status opts in with @typed_task(track_started=True), as render_thumbnail does.
        "task_track_started": False,
        "worker_max_tasks_per_child": settings.worker.max_tasks_per_child,
        "worker_max_memory_per_child": settings.worker.max_memory_per_child,
        "worker_concurrency": settings.worker.concurrency,
        "worker_soft_shutdown_timeout": settings.worker.soft_shutdown_timeout,
        # Redis only: a worker with no task running still waits out the soft shutdown, so
        # the ETA messages it holds are requeued (Celery's advice for Redis). Elsewhere an
        # idle worker's cold shutdown (a second Ctrl-C) ends at once.
        "worker_enable_soft_shutdown_on_idle": settings.broker.is_redis,
        "worker_hijack_root_logger": False,
        "task_default_queue": DEFAULT_QUEUE,
        "task_queues": task_queues(settings),
        "task_create_missing_queues": False,
        # Used when the worker runs with --autoscale (autoscale.enabled, cli.py).
        "worker_autoscaler": AUTOSCALER,
    }
    if settings.broker.scheme == "filesystem":
        config["broker_transport"] = embedded_broker.TRANSPORT
    if settings.broker.uses_tls:
        config["broker_use_ssl"] = settings.broker.tls_options()
    if settings.results.uses_tls:
        config["redis_backend_use_ssl"] = settings.results.tls_options()
    config |= periodic.scheduler_config(settings, _result_backend(settings))
    return config


def task_queues(settings: Settings) -> list[Queue]:
    """The work queues; on RabbitMQ each dead-letters into ``DEAD_LETTER_QUEUE``."""
    arguments = None
    if settings.broker.is_amqp:
        arguments = {
            "x-dead-letter-exchange": DEAD_LETTER_QUEUE,
            "x-dead-letter-routing-key": DEAD_LETTER_QUEUE,
        }
    # One routing key per queue: queues sharing a binding would each get a copy.
    return [
        Queue(name, Exchange(name), routing_key=name, queue_arguments=arguments) for name in QUEUES
    ]


def dead_letter_queue() -> Queue:
    """Where RabbitMQ puts rejected messages, for inspection or replay."""
    return Queue(DEAD_LETTER_QUEUE, Exchange(DEAD_LETTER_QUEUE), routing_key=DEAD_LETTER_QUEUE)


def monitored_queues(settings: Settings) -> list[Queue]:
    """Every queue the project declares: the work queues, and on RabbitMQ ``dead_letter``."""
    dead_letter = [dead_letter_queue()] if settings.broker.is_amqp else []
    return [*task_queues(settings), *dead_letter]


class DeclareDeadLetterQueue(bootsteps.StartStopStep):
    """Declare the dead-letter queue on each broker connection of a worker.

    A worker declares only the queues it consumes, and RabbitMQ silently drops
    messages dead-lettered to an exchange that does not exist.
    """

    requires = ("celery.worker.consumer.connection:Connection",)

    def start(self, parent: Consumer) -> None:
        """Declare the queue, its exchange and binding (idempotent)."""
        if parent.connection is None:  # the Connection step it requires sets it first
            raise RuntimeError("the consumer has no broker connection yet")
        dead_letter_queue()(parent.connection.default_channel).declare()


class OwnQueueRouter:
    """Celery router: a task goes to the queue it names (``@typed_task(queue="cpu")``).

    Celery applies a task's own ``queue`` only to calls through the task object; this
    gives the same answer to a publish by name (``send_task``) and to the contracts.
    """

    def __init__(self, app: Celery) -> None:
        self.app = app

    def __call__(
        self,
        name: str,
        *_call: Any,  # the call's args, kwargs and options: the route ignores them
        task: Task[Any, Any] | None = None,
        **_more: Any,
    ) -> dict[str, str] | None:
        """The task's own queue, or None for Celery's default queue."""
        known = task or self.app.tasks.get(name)
        queue = getattr(known, "queue", None)
        return {"queue": queue} if queue else None


class QueueTimeLimits:
    """Celery task annotation: the limits of a task's queue fill in those it did not set.

    A task's queue is the one it names (``@typed_task(queue="cpu")``), else the default:
    tasks on the cpu queue get ``tasks.cpu``, the others ``tasks``; a limit given on
    the task itself (``@typed_task(time_limit=300)``) wins. The task's
    ``time_limit_settings`` names the setting each filled-in limit came from, which
    the task reference (``contracts docs``) shows instead of a profile's value.
    """

    def __init__(self, limits: TaskSettings) -> None:
        self.limits = limits

    def annotate(self, task: Task[Any, Any]) -> dict[str, Any]:
        """The limits ``task`` lacks, from its queue's defaults, and their setting keys."""
        name = getattr(task, "queue", None) or DEFAULT_QUEUE
        if name not in QUEUES:  # refused by name at start-up (_check_queues)
            return {}
        missing = [key for key in ("soft_time_limit", "time_limit") if getattr(task, key) is None]
        if not missing:  # Celery binds a task more than once: keep the first answer
            return {}
        limits, prefix = queue_limits(self.limits, name)
        return {key: getattr(limits, key) for key in missing} | {
            "time_limit_settings": {key: f"{prefix}.{key}" for key in missing}
        }


def _secret_url(url: str, username: str | None, password: SecretStr | None) -> str:
    """Insert credentials kept apart from the URL, so the URL itself is never secret."""
    if username is None and password is None:
        return url
    scheme, rest = url.split("://", 1)
    secret = f":{quote(password.get_secret_value(), safe='')}" if password else ""
    return f"{scheme}://{quote(username or '', safe='')}{secret}@{rest}"


def _transport_options(settings: Settings) -> dict[str, Any]:
    if settings.broker.scheme == "filesystem":
        folder = str(settings.data_dir / "broker")
        return {
            "data_folder_in": folder,
            "data_folder_out": folder,
            "processed_folder": str(settings.data_dir / "broker-processed"),
            # kombu keeps its exchange table in ./control by default: the working
            # directory, which a container's non-root user cannot write.
            "control_folder": str(settings.data_dir / "broker-control"),
            "store_processed": False,
            # kombu polls an empty folder once a second by default, which held a worker
            # to ~2 tasks/s (measured: 30 queued process_data in 14 s); at 0.05 s it
            # ran ~40/s, enough to see a 10/s rate_limit, for ~0.5% CPU when idle.
            "polling_interval": 0.05,
        }
    if settings.broker.is_redis:
        timeout = settings.broker.visibility_timeout
        interval = max(1, min(10, int(timeout // 4)))
        return {
            "visibility_timeout": timeout,
            # kombu sweeps for messages of dead workers every interval x throttle
            # (100 s by default); sweep often enough to honour a short timeout.
            "unacked_restore_interval": interval,
            "unacked_restore_throttle": 1,
            # A sweep holds a lock in Redis; a worker cut off mid-sweep would leave it
            # for 5 minutes (the default), blocking every other worker's sweep.
            "unacked_mutex_expire": 3 * interval,
            # Without it redis-py waits for the OS (minutes) on a broker that does not
            # answer; connection_timeout then bounds each connection attempt.
            "socket_connect_timeout": settings.broker.connection_timeout,
        }
    if settings.broker.is_amqp:
        # Publisher confirms: a publish returns once RabbitMQ has the message, so a
        # caller is never told "sent" for a message lost in a dropped connection.
        return {"confirm_publish": settings.broker.publisher_confirms}
    return {}


def _result_backend(settings: Settings) -> str:
    if settings.results.url == "file://":
        folder = (settings.data_dir / "results").resolve()
        return f"{embedded_broker.RESULT_BACKEND}+file://{folder}"
    results = settings.results
    return _secret_url(results.url, results.username, results.password)


def _create_local_folders(settings: Settings) -> None:
    """The embedded broker and file results need their folders before Celery starts."""
    folders = []
    if settings.broker.scheme == "filesystem":
        folders += [
            settings.data_dir / name for name in ("broker", "broker-processed", "broker-control")
        ]
    if settings.results.url == "file://":
        folders.append(settings.data_dir / "results")
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)


def _check_queues(app: ProjectCelery) -> None:
    """Refuse a task naming a queue no worker consumes: its messages would never run."""
    for task in app.tasks.values():
        queue = getattr(task, "queue", None)
        if queue is not None and queue not in QUEUES:
            raise UnknownQueueError(queue, task.name)


def _check_time_limits(app: ProjectCelery) -> None:
    """Refuse a task whose soft limit would never fire before its hard limit."""
    for task in app.tasks.values():
        soft, hard = task.soft_time_limit, task.time_limit
        if soft is not None and hard is not None and soft >= hard:
            raise ConfigError(
                f"{task.name}: soft_time_limit={soft}s must be lower than "
                f"time_limit={hard}s; set both on the task"
            )


def _check_visibility_timeout(app: ProjectCelery) -> None:
    """Refuse a Redis visibility timeout shorter than a task's hard limit.

    Redis redelivers an unacknowledged task after the visibility timeout; with
    acks-late, a task that runs longer than that would run twice at once.
    """
    timeout = app.settings.broker.visibility_timeout
    limits = {"tasks.time_limit": app.settings.tasks.time_limit} | {
        task.name: task.time_limit for task in app.tasks.values() if task.time_limit
    }
    name, longest = max(limits.items(), key=lambda item: item[1])
    if longest >= timeout:
        message = (
            f"{timeout}s must exceed the longest hard time limit ({longest}s, {name}); "
            "raise the timeout or lower that limit"
        )
        raise ConfigError(setting_problem(app.settings, "broker.visibility_timeout", message))
