"""Worker health without ``inspect ping``: a heartbeat file, and the probes that read it.

``celery inspect ping`` needs the broker (so it fails during a broker blip) and takes
a second or more. Instead each worker keeps ``<data_dir>/heartbeats/<node name>.json``
up to date, and ``probe --liveness|--readiness`` reads it: no broker round trip.

Two clocks go into the file, because a worker can be stuck in two ways:

- a writer thread rewrites the file every ``heartbeat.interval`` seconds; if the
  file is old, the whole process is stopped or hung (SIGSTOP, a frozen machine);
- a timer entry on the consumer's own loop asks that loop to record ``loop_at``.
  The entry is queued with ``call_soon``, which both loops run themselves: the
  event loop (Redis, RabbitMQ) runs the timer too, while the blocking loop of the
  embedded filesystem broker has its timer on a thread of its own, so only the
  ``call_soon`` proves that the loop itself is turning. If ``loop_at`` is old while
  the worker says it is consuming, the loop is blocked.

While the broker is out of reach the consumer loop does not run at all (Celery
reconnects in its place); the writer thread goes on, so such a worker stays live
but not ready. One file per node name: workers sharing a data_dir (several on one
machine) each write their own, and a Kubernetes pod has a data_dir of its own.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from celery import bootsteps
from celery.bootsteps import CLOSE  # type: ignore[attr-defined]  # not in celery-types
from celery.worker.consumer import Consumer
from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    from .celery_app import ProjectCelery

logger = logging.getLogger(__name__)

HEARTBEAT_DIR = "heartbeats"


class Phase(StrEnum):
    """What the worker is doing, as its consumer steps report it."""

    CONNECTING = "connecting"  # no broker connection: starting up or reconnecting
    CONSUMING = "consuming"  # connected, the consumer loop runs
    STOPPING = "stopping"  # warm shutdown: running tasks finish, nothing new is taken


class Beat(BaseModel):
    """The heartbeat file's content; times are Unix timestamps (seconds)."""

    node: str
    pid: int
    phase: Phase
    phase_since: float
    written_at: float  # by the writer thread: the process is running
    loop_at: float  # by the consumer loop itself: it is not blocked


def heartbeat_path(data_dir: Path, node: str) -> Path:
    """The heartbeat file of the worker named ``node`` (e.g. ``celery@host``)."""
    return data_dir / HEARTBEAT_DIR / f"{node.replace(os.sep, '_')}.json"


def known_nodes(data_dir: Path) -> list[str]:
    """The node names of the heartbeat files in ``data_dir``, for a probe that found none."""
    return sorted(path.stem for path in (data_dir / HEARTBEAT_DIR).glob("*.json"))


@dataclass(frozen=True)
class Verdict:
    """A probe's answer: pass or fail, and one line saying why."""

    ok: bool
    reason: str


def read_beat(path: Path) -> Beat | None:
    """The heartbeat at ``path``; None when there is no file; ValueError when unreadable."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return Beat.model_validate_json(raw)
    except ValidationError as error:
        raise ValueError(f"{path} is not a heartbeat file ({error.error_count()} errors)") from None


def liveness(beat: Beat | None, now: float, max_age: float) -> Verdict:
    """Live unless the process stopped writing or its consumer loop stopped turning."""
    problem = _liveness_problem(beat, now, max_age)
    if problem is not None:
        return Verdict(False, f"not live: {problem}")
    assert beat is not None  # a missing file is a problem
    return Verdict(True, f"live: {_summary(beat, now, max_age)}")


def readiness(beat: Beat | None, now: float, max_age: float) -> Verdict:
    """Ready when live and consuming over an open broker connection."""
    problem = _liveness_problem(beat, now, max_age)
    if problem is not None:
        return Verdict(False, f"not ready: {problem}")
    assert beat is not None  # a missing file is a problem
    summary = _summary(beat, now, max_age)
    if beat.phase is not Phase.CONSUMING:
        return Verdict(False, f"not ready: {summary}")
    return Verdict(True, f"ready: {summary}")


def _liveness_problem(beat: Beat | None, now: float, max_age: float) -> str | None:
    if beat is None:
        return "no heartbeat file: the worker has not started, or runs under another node name"
    age = max(0.0, now - beat.written_at)
    if age > max_age:
        return f"{_summary(beat, now, max_age)}: the worker process is stopped or hung"
    loop_age = max(0.0, now - beat.loop_at)
    if beat.phase is Phase.CONSUMING and loop_age > max_age:
        return (
            f"consumer loop last ran {loop_age:.1f}s ago, over the max age of {max_age:g}s, "
            "while connected to the broker: the loop is blocked"
        )
    return None


def _summary(beat: Beat, now: float, max_age: float) -> str:
    age = max(0.0, now - beat.written_at)
    since = max(0.0, now - beat.phase_since)
    broker = {
        Phase.CONSUMING: "broker connected",
        Phase.CONNECTING: f"broker not connected for {since:.0f}s (reconnecting)",
        Phase.STOPPING: f"worker shutting down for {since:.0f}s",
    }[beat.phase]
    return f"heartbeat {age:.1f}s old (max age {max_age:g}s), {broker}"


class HeartbeatWriter:
    """Keeps one worker's heartbeat file current from a thread of its own.

    The consumer step moves ``phase`` and ``loop_at``; the thread only reads them
    (single assignments, so no lock is needed). It never logs while a pool process
    may be forked, except once when writing starts to fail.
    """

    def __init__(self, path: Path, node: str, interval: float) -> None:
        self.path = path
        self.node = node
        self.interval = interval
        self.phase = Phase.CONNECTING
        self.phase_since = self.loop_at = time.time()
        self._stop = threading.Event()
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        """Write now and every ``interval`` seconds until ``stop``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop writing and remove the file: a worker that has exited has no heartbeat."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 5)
        self.path.unlink(missing_ok=True)

    def enter(self, phase: Phase) -> None:
        """Record a change of phase (the loop is about to run when consuming)."""
        now = time.time()
        if phase is Phase.CONSUMING:
            self.loop_at = now
        if phase is not self.phase:
            self.phase, self.phase_since = phase, now

    def write(self) -> None:
        """Replace the file atomically, so a probe never reads half of it."""
        beat = Beat(
            node=self.node,
            pid=os.getpid(),
            phase=self.phase,
            phase_since=self.phase_since,
            written_at=time.time(),
            loop_at=self.loop_at,
        )
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        partial.write_text(beat.model_dump_json())
        partial.replace(self.path)

    def _run(self) -> None:
        while True:
            try:
                self.write()
                self._failing = False
            except OSError:  # a full disk must not stop the worker; the probe will say
                if not self._failing:
                    logger.exception("cannot write the heartbeat file %s", self.path)
                self._failing = True
            if self._stop.wait(self.interval):
                return


class Heartbeat(bootsteps.StartStopStep):
    """Consumer step: the worker's heartbeat file, for ``probe --liveness|--readiness``.

    The writer starts with the consumer, before it connects: a worker waiting for its
    broker at start-up is live, only not ready. It stops after the pool has finished
    its tasks (the worker's last step), so a worker shutting down warmly stays live.
    """

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Consumer, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        settings = cast("ProjectCelery", parent.app).settings
        node = str(parent.hostname)
        self.interval = settings.heartbeat.interval
        path = heartbeat_path(settings.data_dir, node)
        self.writer = HeartbeatWriter(path, node, self.interval)
        self.entry: Any = None
        self.tick_pending = False
        self.writer.start()

    def start(self, parent: Consumer) -> None:
        """Connected: consuming now; ask the loop to check in every interval."""
        self.writer.enter(Phase.CONSUMING)
        self.tick_pending = False  # a tick queued on the lost connection's loop is gone
        self.entry = parent.timer.call_repeatedly(self.interval, self._request_tick, (parent,))

    def stop(self, parent: Consumer) -> None:
        """The connection was lost (reconnecting) or the worker is shutting down."""
        if self.entry is not None:
            parent.timer.cancel(self.entry)
            self.entry = None
        stopping = parent.blueprint.state == CLOSE
        self.writer.enter(Phase.STOPPING if stopping else Phase.CONNECTING)

    def shutdown(self, parent: Consumer) -> None:  # noqa: ARG002 - Celery passes it
        """The worker is done: no more heartbeat."""
        self.writer.stop()

    def _request_tick(self, parent: Consumer) -> None:
        # One queued at a time: while the loop is blocked, ticks must not pile up.
        if not self.tick_pending:
            self.tick_pending = True
            parent.call_soon(self._tick)

    def _tick(self) -> None:
        self.tick_pending = False
        self.writer.loop_at = time.time()
