"""The work queues and everything one queue's worker runs with.

A task names its queue itself (``@typed_task(queue="cpu")``); each queue gets its
own worker (``worker --queue cpu``), so a backlog of slow tasks on one never delays
the others. A queue's settings live under ``tasks.<queue>`` (time limits) and
``worker.<queue>`` (pool and memory guard); the default queue's are ``tasks`` and
``worker`` themselves. ``queue_settings`` is the one place that reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import ConfigError, Settings
from .config.settings import QueueWorkerSettings, TaskSettings, TimeLimits, WorkerSettings

DEFAULT_QUEUE = "default"
CPU_QUEUE = "cpu"
# Adding a queue: name it here, give it fields in TaskSettings and WorkerSettings, and a
# worker wherever the others run (README, Scaling: the checklist; tests name a missed step).
QUEUES = (DEFAULT_QUEUE, CPU_QUEUE)


class UnknownQueueError(ConfigError):
    """A task or a command names a queue that is not in ``QUEUES``."""

    def __init__(self, queue: str, where: str | None = None) -> None:
        super().__init__(
            f"{where + ': ' if where else ''}queue {queue!r} is not a queue of this project; "
            f"use one of {', '.join(QUEUES)}, or add it to QUEUES in queues.py with its settings"
        )


@dataclass(frozen=True)
class QueueSettings:
    """One queue's time limits and worker, and the setting keys they come from."""

    name: str
    limits: TimeLimits
    worker: QueueWorkerSettings
    limits_key: str
    worker_key: str


def queue_settings(settings: Settings, queue: str) -> QueueSettings:
    """The settings of ``queue``; UnknownQueueError if the project has no such queue."""
    limits, limits_key = queue_limits(settings.tasks, queue)
    worker, worker_key = queue_worker(settings.worker, queue)
    return QueueSettings(queue, limits, worker, limits_key, worker_key)


def queue_worker(worker: WorkerSettings, queue: str) -> tuple[QueueWorkerSettings, str]:
    """The worker settings of a queue and their settings key."""
    if queue not in QUEUES:
        raise UnknownQueueError(queue)
    if queue == DEFAULT_QUEUE:
        own = QueueWorkerSettings(
            concurrency=worker.concurrency,
            pool=worker.pool,
            max_tasks_per_child=worker.max_tasks_per_child,
            max_memory_per_child=worker.max_memory_per_child,
            keda=worker.keda,
        )
        return own, "worker"
    worker_settings: QueueWorkerSettings = getattr(worker, queue)
    return worker_settings, f"worker.{queue}"


def queue_limits(tasks: TaskSettings, queue: str) -> tuple[TimeLimits, str]:
    """The default time limits of a queue's tasks and their settings key."""
    if queue not in QUEUES:
        raise UnknownQueueError(queue)
    if queue == DEFAULT_QUEUE:
        return tasks, "tasks"
    limits: TimeLimits = getattr(tasks, queue)
    return limits, f"tasks.{queue}"


def worker_argv(queue: QueueSettings) -> list[str]:
    """``celery worker`` options that run one queue's worker with its own settings.

    The node name carries the queue, so workers of several queues on one host do not
    clash (Celery refuses to tell two ``celery@host`` apart).
    """
    worker = queue.worker
    return [
        f"--queues={queue.name}",
        f"--hostname={queue.name}@%h",
        f"--concurrency={worker.concurrency}",
        f"--pool={worker.pool}",
        f"--max-tasks-per-child={worker.max_tasks_per_child}",
        f"--max-memory-per-child={worker.max_memory_per_child}",
    ]
