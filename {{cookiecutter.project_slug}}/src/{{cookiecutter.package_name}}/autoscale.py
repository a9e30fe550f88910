"""The worker's autoscaler: pool size from the queues' backlog and the machine's load.

Celery runs it when the worker starts with ``--autoscale=MAX,MIN`` (``autoscale_argv``
adds that when ``autoscale.enabled``); ``worker_autoscaler`` names this class. Every
``autoscale.interval`` seconds it takes a snapshot (``Load``) and applies
``scaling.decide``; the queue depths come from ``queue_depth``, CPU and memory from psutil.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from time import monotonic
from typing import Any

import psutil
from celery.worker import state
from celery.worker.autoscale import Autoscaler
from kombu import Connection

from .config import Settings
from .queue_depth import queue_depths
from .scaling import Load, ScalingPolicy, decide

logger = logging.getLogger(__name__)
KIB = 1024
# The value of Celery's worker_autoscaler setting (celery_app.py).
AUTOSCALER = f"{__name__}:QueueAutoscaler"


def autoscale_argv(settings: Settings) -> list[str]:
    """The ``celery worker`` option that turns the autoscaler on, when the settings do."""
    scale = settings.autoscale
    if not scale.enabled:
        return []
    return [f"--autoscale={scale.max_processes},{scale.min_processes}"]


class QueueAutoscaler(Autoscaler):
    """Grows the pool while work waits and the machine has room; shrinks it when idle or loaded.

    Celery calls ``maybe_scale`` from the worker's event loop every ``keepalive``
    seconds and on every task message; it looks at most once per ``autoscale.interval``.
    """

    def __init__(
        self,
        pool: Any,
        max_concurrency: int,
        min_concurrency: int = 0,
        worker: Any = None,
        keepalive: float = 30,  # noqa: ARG002 - Celery passes it; autoscale.interval wins
        mutex: Any = None,
    ) -> None:
        settings: Settings = worker.app.settings
        interval = settings.autoscale.interval
        super().__init__(
            pool, max_concurrency, min_concurrency, worker=worker, keepalive=interval, mutex=mutex
        )
        self.settings = settings
        self._connection: Connection | None = None
        # No cool-down at start: a worker that starts into a backlog grows at once.
        self._last_change = float("-inf")
        self._next_look = 0.0
        psutil.cpu_percent(interval=None)  # the first reading only starts the measurement

    def policy(self) -> ScalingPolicy:
        """The bounds now (``celery control autoscale`` may change them) and the thresholds."""
        scale = self.settings.autoscale
        return ScalingPolicy(
            minimum=self.min_concurrency,
            maximum=self.max_concurrency,
            cooldown=scale.cooldown,
            cpu_grow_below=scale.cpu_grow_below,
            cpu_shrink_above=scale.cpu_shrink_above,
            process_memory=self.settings.worker.max_memory_per_child * KIB,
        )

    def maybe_scale(self, req: Any = None) -> None:  # noqa: ARG002 - a message's request
        """Resize the pool if a look is due and the decision says so.

        Celery passes the request of each task message; the queues are read instead.
        """
        now = monotonic()
        if now < self._next_look:
            return
        self._next_look = now + self.settings.autoscale.interval
        load = self.observe(now)
        if load is None:
            return
        target = decide(self.policy(), load)
        if target != load.size and self.resize(load.size, target):
            self._last_change = now
            logger.info(
                "autoscale: %d -> %d processes (backlog %d, busy %d, cpu %.0f%%, %d MiB free)",
                load.size,
                self.processes,
                load.backlog,
                load.busy,
                load.cpu * 100,
                load.memory_available // KIB // KIB,
            )

    def observe(self, now: float) -> Load | None:
        """A snapshot of the pool, its queues and the machine; None if the broker is away."""
        busy = len(state.active_requests)
        prefetched = max(len(state.reserved_requests) - busy, 0)
        waiting = self.waiting()
        if waiting is None:
            return None
        return Load(
            size=self.processes,
            busy=busy,
            backlog=waiting + prefetched,
            cpu=min(psutil.cpu_percent(interval=None) / 100, 1.0),
            memory_available=psutil.virtual_memory().available,
            since_change=now - self._last_change,
        )

    def waiting(self) -> int | None:
        """Messages waiting on the broker in the queues this worker consumes."""
        app = self.worker.app
        connection = self._connection or app.connection_for_read()
        self._connection = connection
        errors = (*connection.connection_errors, *connection.channel_errors, OSError)
        try:
            return sum(queue_depths(connection, app.amqp.queues.consume_from).values())
        except errors as error:
            # The consumer reconnects on its own; skip this look and start afresh next time.
            logger.warning("autoscale: cannot read the queue depths: %r", error)
            self.close()
            return None

    def resize(self, size: int, target: int) -> bool:
        """Grow or shrink the pool towards ``target``; whether its size changed."""
        pool: Any = self.pool  # prefork's grow and shrink are not in the stubs
        if target > size:
            pool.grow(target - size)
        else:
            # Only idle processes stop; with fewer idle than asked, billiard stops those
            # and raises ValueError, so the size is read back instead of assumed.
            with suppress(ValueError):
                pool.shrink(size - target)
        pool.maintain_pool()
        return bool(self.processes != size)

    def close(self) -> None:
        """Drop the connection used to read queue depths."""
        if self._connection is not None:
            with suppress(Exception):  # it may be broken already; it is discarded either way
                self._connection.release()
            self._connection = None

    def stop(self) -> None:
        """Stop the thread (pools without an event loop) and close the connection."""
        super().stop()
        self.close()
