"""Stop running a task that keeps killing the process that runs it.

With ``task_acks_late`` and ``task_reject_on_worker_lost`` (see ``celery_app``), the
message of a task whose process died (out of memory, segfault, ``kill -9``) goes back
to the queue: right once, a loop when the task itself is what kills the process. So
each redelivery of a message is counted in the result store before its run starts,
and the count is forgotten when a run ends (success, failure or retry): a redelivery
means the run before it never ended, it died with its process (or was cancelled by a
lost broker connection). Once ``tasks.max_worker_losses`` runs in a row died, the
next delivery fails at once with ``WorkerLostTooOftenError`` and is not run: its
message is rejected, so RabbitMQ moves it to ``dead_letter``.

Only redeliveries are counted: both brokers mark them (RabbitMQ's ``redelivered``
flag; kombu sets it on every message Redis gets back), and a first delivery, nearly
every one, then costs no Redis round trip at all, where counting every run cost two
(about 5 % of a short task's throughput, docs/performance.md).

Why by hand: Celery's ``task_retry_on_worker_lost`` bounds only the death of a pool
process seen by a surviving worker, by ``max_retries`` (shared with ordinary retries,
unbounded when None) after ``default_retry_delay``; when the whole worker dies (a
container OOM kill, a lost node) the broker redelivers with no count. RabbitMQ counts
deliveries only on quorum queues (``x-delivery-limit``), Redis not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from celery import Task
from celery.backends.redis import RedisBackend
from celery.signals import task_postrun
from redis import Redis, RedisError

logger = logging.getLogger(__name__)
KEY_PREFIX = f"{__package__}:worker-losses:"

BeforeStart = Callable[[Task[Any, Any], str, Any, Any], None]


class WorkerLostTooOftenError(Exception):
    """A task whose runs died with their process too often; it is not run again.

    Not a ``WorkerLostError``: Celery requeues a task that fails with one of those.
    """


class WorkerLossLimit:
    """Celery task annotation: count each run of an acks-late task, refuse it past ``limit``.

    It wraps the task's ``before_start`` (called in the pool process right before the
    task body, by workers only), so it applies to every task whatever its class.
    """

    def __init__(self, limit: int, memory: float) -> None:
        self.limit = limit
        # How long an unfinished run is remembered: long enough to outlast redelivery.
        self.memory = int(memory)

    def annotate_any(self) -> dict[str, Any]:
        """Celery's hook for every task: an ``@`` key wraps the task's method of that name.

        ``annotate_any``, not ``annotate``: Celery applies only the first annotation whose
        ``annotate`` answers, and the queue time limits answer for every task.
        """
        return {"@before_start": self._counting}

    def _counting(self, before_start: BeforeStart) -> BeforeStart:
        def counted(task: Task[Any, Any], task_id: str, args: Any, kwargs: Any) -> None:
            self.count_run(task, task_id)
            before_start(task, task_id, args, kwargs)

        return counted

    def count_run(self, task: Task[Any, Any], task_id: str) -> None:
        """Count a redelivery; WorkerLostTooOftenError if ``limit`` runs before it died."""
        client = _client(task)
        if client is None:
            return
        key = KEY_PREFIX + task_id
        pipeline = client.pipeline()
        pipeline.incr(key)
        pipeline.expire(key, self.memory)
        try:
            losses = int(pipeline.execute()[0])
        except RedisError as error:
            # Better to run it once more than to lose it to a counting problem.
            logger.warning("could not count the runs of %s[%s]: %r", task.name, task_id, error)
            return
        if losses >= self.limit:
            raise WorkerLostTooOftenError(
                f"{task.name}[{task_id}] is not run again: its last {self.limit} runs each "
                f"ended with their worker process dying (out of memory, crash or kill); "
                f"tasks.max_worker_losses={self.limit}"
            )


def forget_runs(sender: Task[Any, Any] | None = None, task_id: str = "", **_: Any) -> None:
    """``task_postrun``: the run ended, so its process survived it; reset the count.

    Only a redelivered run can have a count to forget.
    """
    client = _client(sender) if sender is not None else None
    if client is not None:
        with suppress(RedisError):  # the key expires anyway
            client.delete(KEY_PREFIX + task_id)


def connect_signals() -> None:
    """Reset a task's count when one of its runs ends (idempotent)."""
    task_postrun.connect(forget_runs, weak=False, dispatch_uid="worker_loss.forget_runs")


def _client(task: Task[Any, Any]) -> Redis | None:
    """The client to count this run with, or None when it is not counted.

    Only a worker's run of an acks-late task is redelivered, so only it can loop; a
    first delivery has nothing before it that could have died.
    """
    if task.request.is_eager or not task.acks_late:
        return None
    if not (task.request.delivery_info or {}).get("redelivered"):
        return None
    return redis_client(task.backend)


def redis_client(backend: Any) -> Redis | None:
    """The client of a Redis result store; None for others (the local profile's files)."""
    return backend.client if isinstance(backend, RedisBackend) else None
