"""Prometheus metrics of a worker: its pool processes write them, its main process serves them.

A prefork worker runs tasks in child processes, each with memory of its own, so
prometheus-client's multiprocess mode is used: every process writes its values to
files in one folder (``PROMETHEUS_MULTIPROC_DIR``) and the main process adds them up
when ``/metrics`` is scraped. The folder is the worker's own,
``data_dir/metrics/<node name>``, emptied when the worker starts: a restarted worker
starts its counters at zero, which Prometheus' ``rate()`` reads as a reset.

Everything comes from Celery signals, without Celery's task events (which cost every
task a broker message):

- ``celery_tasks_total{task,queue,state}``: ``task_success``, ``task_failure`` (raised
  in the pool process, or decided by the main process for a hard time limit or a lost
  worker), ``task_retry``, ``task_revoked``, and rejections: a message the worker
  refused unrun (``task_rejected``, ``task_unknown``) or a task that raised
  ``Reject(requeue=True)`` (one that does not requeue is counted failed, as Celery
  records it);
- ``celery_task_runtime_seconds`` and ``celery_task_queue_wait_seconds``: measured in
  the pool process around each run; the wait starts at the ``published_at`` header
  every publish carries (``before_task_publish``, so a retry starts a new wait), or
  at the task's ETA when it has one;
- ``celery_worker_pool_busy_processes``: +1/-1 around each run, added up over the live
  processes (``livesum``); a pool process that exits is marked dead, so a process
  killed mid-task (hard time limit, OOM) stops counting as busy;
- ``celery_worker_process_recycles_total{reason}``: billiard ends a pool process with
  the same exit code for both guards, so the process tells them apart as it exits: its
  resident memory above ``max_memory_per_child`` is what billiard checked first;
- ``celery_worker_up`` and ``celery_worker_pool_processes``: read from the worker at
  scrape time by the main process.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import psutil
from billiard.compat import mem_rss
from billiard.pool import EX_RECYCLE
from celery import Task, bootsteps, states
from celery.signals import (
    before_task_publish,
    task_failure,
    task_postrun,
    task_prerun,
    task_rejected,
    task_retry,
    task_revoked,
    task_success,
    task_unknown,
    worker_process_shutdown,
)
from celery.utils.dispatch import Signal
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client import values as prometheus_values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from .config import ConfigError, setting_problem
from .queues import DEFAULT_QUEUE, QUEUES

if TYPE_CHECKING:
    from celery.worker import WorkController

    from .celery_app import ProjectCelery

METRICS_DIR = "metrics"
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# The message header that carries the publish time (Unix seconds), for the queue wait.
PUBLISHED_AT = "published_at"
STATE_LABELS = {states.SUCCESS: "succeeded", states.FAILURE: "failed", states.RETRY: "retried"}
# Tasks run from milliseconds to the hard time limit (90 s by default, more if a task sets it).
RUNTIME_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# A queue wait runs from milliseconds (an idle worker) to hours (a backlog).
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


def metrics_dir(data_dir: Path, node: str) -> Path:
    """The multiprocess folder of the worker named ``node`` (e.g. ``cpu@host``)."""
    return data_dir / METRICS_DIR / node.replace(os.sep, "_")


def metrics_port(base: int, queues: tuple[str, ...]) -> int:
    """The port of a worker consuming ``queues``: ``base`` plus the place in QUEUES of
    its one queue; ``base`` for a worker of several queues."""
    if len(queues) == 1 and queues[0] in QUEUES:
        return base + QUEUES.index(queues[0])
    return base


def use_multiprocess_dir(directory: Path) -> None:
    """Empty ``directory`` and make it this process's (and its children's) metrics folder.

    Call before the first metric is created and before the pool forks.
    """
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[MULTIPROCESS_VARIABLE] = str(directory)
    # prometheus-client chooses between in-memory and file-backed values when it is first
    # imported, and any module may have imported it before this ran: choose again now
    # that the folder is known (the choice is read each time a metric value is created).
    prometheus_values.ValueClass = prometheus_values.get_value_class()  # type: ignore[no-untyped-call]


@contextmanager
def multiprocess_dir(directory: Path) -> Iterator[None]:
    """``use_multiprocess_dir`` for the block; then this process's metrics as they were.

    For a worker's metrics in a process that is not a worker (the layers benchmark).
    """
    saved = os.environ.get(MULTIPROCESS_VARIABLE)
    use_multiprocess_dir(directory)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(MULTIPROCESS_VARIABLE, None)
        else:
            os.environ[MULTIPROCESS_VARIABLE] = saved
        prometheus_values.ValueClass = prometheus_values.get_value_class()  # type: ignore[no-untyped-call]


def recycle_reason(exitcode: int | None, rss_kib: int, max_memory_kib: int | None) -> str | None:
    """Why a pool process exits: ``max_memory``, ``max_tasks``, or None when not recycled.

    billiard exits with EX_RECYCLE for both guards; it checks the memory after each task
    first, so a process above the limit was recycled for its memory.
    """
    if exitcode != EX_RECYCLE:
        return None
    if max_memory_kib and rss_kib > max_memory_kib:
        return "max_memory"
    return "max_tasks"


def queue_wait(request: Any, now: float) -> float | None:
    """Seconds from publish (or from the ETA, when later) to ``now``; None without the header.

    Clocks of the publishing and the working machine are compared: keep them in sync (NTP);
    a negative wait from a small skew counts as 0.
    """
    published = getattr(request, PUBLISHED_AT, None)
    if not isinstance(published, int | float) or isinstance(published, bool):
        return None
    start = float(published)
    eta = getattr(request, "eta", None)
    if isinstance(eta, str):
        eta = datetime.fromisoformat(eta)
    if isinstance(eta, datetime):
        start = max(start, eta.timestamp())
    return max(0.0, now - start)


def task_queue(task: Task[Any, Any], request: Any) -> str:
    """The queue the running task came from, else the queue it names, else the default."""
    delivery = getattr(request, "delivery_info", None) or {}
    queue = delivery.get("routing_key") or getattr(task, "queue", None) or DEFAULT_QUEUE
    return str(queue)


@dataclass
class WorkerMetrics:
    """The metrics one worker writes, created in its main process before the pool forks."""

    node: str
    queues: tuple[str, ...]
    max_memory_kib: int | None
    tasks: Counter
    runtime: Histogram
    queue_wait: Histogram
    busy: Gauge
    recycles: Counter
    # The queue of the last task this (pool) process started: a recycle's queue label.
    last_queue: str = DEFAULT_QUEUE

    @classmethod
    def create(
        cls, node: str, queues: tuple[str, ...], max_memory_kib: int | None
    ) -> WorkerMetrics:
        """The worker's metrics; ``registry=None``: the multiprocess collector serves them."""
        task_labels = ("task", "queue")
        metrics = cls(
            node=node,
            queues=queues,
            max_memory_kib=max_memory_kib,
            tasks=Counter(
                "celery_tasks",
                "Tasks by final state of a run",
                (*task_labels, "state"),
                registry=None,
            ),
            runtime=Histogram(
                "celery_task_runtime_seconds",
                "Run time of a task on the worker",
                task_labels,
                buckets=RUNTIME_BUCKETS,
                registry=None,
            ),
            queue_wait=Histogram(
                "celery_task_queue_wait_seconds",
                "Time from publish (or ETA) to start",
                task_labels,
                buckets=WAIT_BUCKETS,
                registry=None,
            ),
            busy=Gauge(
                "celery_worker_pool_busy_processes",
                "Pool processes running a task",
                ("worker", "queue"),
                multiprocess_mode="livesum",
                registry=None,
            ),
            recycles=Counter(
                "celery_worker_process_recycles",
                "Pool processes replaced by a recycling guard",
                ("worker", "queue", "reason"),
                registry=None,
            ),
        )
        for queue in queues:  # every series from the start, at 0
            metrics.busy.labels(node, queue).set(0)
        return metrics

    def count(self, task: Task[Any, Any], state: str, request: Any = None) -> None:
        """One run (or one refused message) of ``task`` ended in ``state``."""
        queue = task_queue(task, task.request if request is None else request)
        self.tasks.labels(task.name, queue, state).inc()

    def run_started(self, task: Task[Any, Any]) -> None:
        """``task`` starts in this pool process: one more busy, and its queue wait."""
        request = task.request
        queue = task_queue(task, request)
        self.last_queue = queue
        request.update(metrics_started=time.monotonic(), metrics_queue=queue)
        self.busy.labels(self.node, queue).inc()
        wait = queue_wait(request, time.time())
        if wait is not None:
            self.queue_wait.labels(task.name, queue).observe(wait)

    def run_ended(self, task: Task[Any, Any], state: str | None, retval: Any = None) -> None:
        """The run ``run_started`` saw has ended: one less busy, and its run time."""
        started = getattr(task.request, "metrics_started", None)
        if started is None:
            return
        queue = getattr(task.request, "metrics_queue", DEFAULT_QUEUE)
        self.busy.labels(self.node, queue).dec()
        self.runtime.labels(task.name, queue).observe(time.monotonic() - started)
        # Reject(requeue=False) is a failure to Celery (task_failure, from the main process).
        if state == states.REJECTED and getattr(retval, "requeue", False):
            self.count(task, "rejected")

    def connect(self) -> None:
        """Record from Celery's signals: in this process, and in the pool processes it
        forks later. Replaces the receivers of metrics connected before."""
        for signal, receiver in self._receivers():
            signal.disconnect(dispatch_uid=f"metrics.{receiver.__name__}")
            signal.connect(receiver, weak=False, dispatch_uid=f"metrics.{receiver.__name__}")

    def disconnect(self) -> None:
        """Record nothing more."""
        for signal, receiver in self._receivers():
            signal.disconnect(dispatch_uid=f"metrics.{receiver.__name__}")

    def _receivers(self) -> list[tuple[Signal, Callable[..., None]]]:
        return [
            (task_prerun, self._on_prerun),
            (task_postrun, self._on_postrun),
            (task_success, self._on_success),
            (task_failure, self._on_failure),
            (task_retry, self._on_retry),
            (task_revoked, self._on_revoked),
            (task_rejected, self._on_refused),
            (task_unknown, self._on_refused),
            (worker_process_shutdown, self._on_process_shutdown),
        ]

    def _on_prerun(self, task: Task[Any, Any], **_: Any) -> None:
        self.run_started(task)

    def _on_postrun(
        self, task: Task[Any, Any], state: str | None = None, retval: Any = None, **_: Any
    ) -> None:
        self.run_ended(task, state, retval)

    def _on_success(self, sender: Task[Any, Any], **_: Any) -> None:
        self.count(sender, STATE_LABELS[states.SUCCESS])

    def _on_failure(self, sender: Task[Any, Any], **_: Any) -> None:
        self.count(sender, STATE_LABELS[states.FAILURE])

    def _on_retry(self, sender: Task[Any, Any], request: Any = None, **_: Any) -> None:
        self.count(sender, STATE_LABELS[states.RETRY], request)

    def _on_revoked(self, sender: Task[Any, Any], request: Any = None, **_: Any) -> None:
        self.count(sender, "revoked", request)

    def _on_refused(self, message: Any, name: str | None = None, **_: Any) -> None:
        """A message the worker refused unrun: not JSON, not a task, or a task it does
        not know (``task_unknown`` names it)."""
        name = name or str((message.headers or {}).get("task") or "unknown")
        queue = str(message.delivery_info.get("routing_key") or DEFAULT_QUEUE)
        self.tasks.labels(name, queue, "rejected").inc()

    def _on_process_shutdown(self, pid: int, exitcode: int | None = None, **_: Any) -> None:
        """A pool process exits: count a recycle, drop its busy count."""
        reason = recycle_reason(exitcode, mem_rss(), self.max_memory_kib)
        if reason is not None:
            self.recycles.labels(self.node, self.last_queue, reason).inc()
        mark_process_dead(pid)  # type: ignore[no-untyped-call]  # untyped in prometheus-client


def connect_signals() -> None:
    """Stamp every publish with its time (idempotent), whichever process publishes, so
    any worker with metrics on can measure the wait."""
    before_task_publish.connect(_stamp, weak=False, dispatch_uid="metrics.stamp")


def _stamp(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is not None:
        headers[PUBLISHED_AT] = time.time()  # a retry's publish starts a new wait


def reap_dead_processes(directory: Path) -> None:
    """Mark dead the processes that exited without saying so (killed by a hard time
    limit or the OOM killer): their busy count must not outlive them."""
    alive = {os.getpid(), *(child.pid for child in psutil.Process().children(recursive=True))}
    for path in directory.glob("gauge_live*_*.db"):
        pid = int(path.stem.rpartition("_")[2])
        if pid not in alive:
            mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


class WorkerCollector(Collector):
    """What the main process knows at scrape time: the worker is up, its pool's size."""

    def __init__(self, worker: WorkController, metrics: WorkerMetrics, directory: Path) -> None:
        self.worker = worker
        self.metrics = metrics
        self.directory = directory

    def collect(self) -> Iterator[Metric]:
        """Reap dead pool processes, then yield ``up`` and the pool size per queue."""
        reap_dead_processes(self.directory)
        labels = ("worker", "queue")
        up = GaugeMetricFamily("celery_worker_up", "1 while the worker runs", labels=labels)
        size = GaugeMetricFamily(
            "celery_worker_pool_processes", "Pool processes (the pool's size)", labels=labels
        )
        processes = getattr(self.worker.pool, "num_processes", None)  # None until it starts
        for queue in self.metrics.queues:
            up.add_metric([self.metrics.node, queue], 1)
            if processes is not None:
                size.add_metric([self.metrics.node, queue], processes)
        yield up
        yield size


class MetricsServer(bootsteps.StartStopStep):
    """Worker step: the multiprocess folder, the metrics, and ``/metrics`` on the worker's
    metrics port, all set up in the main process before the pool forks."""

    def __init__(self, parent: WorkController, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        settings = cast("ProjectCelery", parent.app).settings
        node = str(cast(Any, parent).hostname)
        queues = tuple(parent.app.amqp.queues.consume_from)
        directory = metrics_dir(settings.data_dir, node)
        use_multiprocess_dir(directory)
        metrics = WorkerMetrics.create(node, queues, cast(Any, parent).max_memory_per_child or None)
        registry = CollectorRegistry(auto_describe=True)
        registry.register(WorkerCollector(parent, metrics, directory))  # reaps first
        MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
        host, port = settings.metrics.host, metrics_port(settings.metrics.port, queues)
        try:
            self.server, _thread = start_http_server(port, addr=host, registry=registry)
        except OSError as error:
            message = (
                f"cannot serve metrics on {host}:{port} ({error.strerror}); another worker of "
                "this queue on this host? give it another metrics.port"
            )
            raise ConfigError(setting_problem(settings, "metrics.port", message)) from None
        self.metrics = metrics
        metrics.connect()  # before the pool forks: its processes inherit the receivers

    def shutdown(self, parent: WorkController) -> None:  # noqa: ARG002 - Celery passes it
        """The worker is done: stop recording and serving."""
        self.metrics.disconnect()
        self.server.shutdown()
        self.server.server_close()
