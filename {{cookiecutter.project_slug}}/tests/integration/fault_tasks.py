"""Misbehaving tasks for the fault tests; worker subprocesses load them with --include.

Each one leaves evidence in the ledger (the results Redis), so a test can tell what
ran, how often, and whether clean-up happened, from outside the worker.
"""

from __future__ import annotations

import os
import signal
import time
import uuid

from billiard.compat import mem_rss
from celery import current_task
from celery.exceptions import SoftTimeLimitExceeded

from {{ cookiecutter.package_name }}.celery_app import (
    current_resources,
)
from {{ cookiecutter.package_name }}.resources import (
    TransientError,
)
from {{ cookiecutter.package_name }}.tasks.notifications import (
    TRANSIENT_RETRIES,
)
from {{ cookiecutter.package_name }}.tasks.typed import (
    TaskModel,
    typed_task,
)

MODULE = __name__


class Work(TaskModel):
    """A unit of work, known by the key its evidence is recorded under."""

    key: str
    seconds: float = 0


class Outcome(TaskModel):
    """What one run did, and in which process."""

    applied: bool
    pid: int


class Leak(TaskModel):
    """How much memory one run leaks."""

    megabytes: int


class Memory(TaskModel):
    """Peak resident memory (what the guard measures) before and after leaking."""

    pid: int
    rss_kib_before: int
    rss_kib_after: int


class Flaky(TaskModel):
    """Fail with TransientError on the first ``failures`` attempts."""

    key: str
    failures: int


def record(key: str, **entry: object) -> bool:
    """Record evidence once per key; return whether this call recorded it."""
    return current_resources().ledger.record_once(key, {"key": key, **entry})


@typed_task()
def apply_then_linger(work: Work) -> Outcome:
    """Apply a side effect once, then keep working: the window to kill the worker in.

    A redelivery finds the effect applied and returns at once.
    """
    applied = record(work.key)
    if applied:
        time.sleep(work.seconds)
    return Outcome(applied=applied, pid=os.getpid())


@typed_task(track_started=True)  # tests wait for STARTED: the worker has taken it
def work_then_apply(work: Work) -> Outcome:
    """Work for a while, then apply the side effect (it shows the work finished)."""
    time.sleep(work.seconds)
    return Outcome(applied=record(work.key), pid=os.getpid())


@typed_task()
def hold_until_released(work: Work) -> Outcome:
    """Keep this pool process busy, and the message unacknowledged, until the ledger
    holds ``work.key`` (the test's release) or ``work.seconds`` passed; ``applied``
    says whether it was released."""
    ledger = current_resources().ledger
    deadline = time.monotonic() + work.seconds
    while time.monotonic() < deadline:
        if any(entry.get("key") == work.key for entry in ledger.entries()):
            return Outcome(applied=True, pid=os.getpid())
        time.sleep(0.05)
    return Outcome(applied=False, pid=os.getpid())


@typed_task()
def kill_own_process(work: Work) -> Outcome:
    """Record this attempt, then SIGKILL the process: a segfault or OOM kill on every run."""
    # A fresh ledger key per attempt, all recorded under ``work.key``: ``recorded`` counts them.
    entry = {"key": work.key, "at": time.time()}
    current_resources().ledger.record_once(f"{work.key}:{uuid.uuid4()}", entry)
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable: the process is gone")


@typed_task()
def kill_own_worker(work: Work) -> Outcome:
    """Record this attempt, then SIGKILL the whole worker: a container OOM kill every run."""
    entry = {"key": work.key, "at": time.time()}
    current_resources().ledger.record_once(f"{work.key}:{uuid.uuid4()}", entry)
    os.kill(os.getppid(), signal.SIGKILL)  # the worker's main process, then this one
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable: the process is gone")


@typed_task()
def hang(work: Work) -> Outcome:
    """Hang; at the soft limit record the clean-up, then re-raise."""
    try:
        time.sleep(work.seconds)
    except SoftTimeLimitExceeded:
        record(f"{work.key}:cleaned-up")
        raise
    return Outcome(applied=False, pid=os.getpid())


@typed_task()
def hang_past_soft_limit(work: Work) -> Outcome:
    """Ignore the soft limit and keep hanging: only the hard limit stops this."""
    deadline = time.monotonic() + work.seconds
    while time.monotonic() < deadline:
        try:
            time.sleep(deadline - time.monotonic())
        except SoftTimeLimitExceeded:
            record(f"{work.key}:ignored-soft-limit")
    return Outcome(applied=False, pid=os.getpid())


# The bug this template exists to contain: module state that only grows.
_leaked: list[bytes] = []


@typed_task()
def leak(request: Leak) -> Memory:
    """Keep ``megabytes`` of touched memory alive for the rest of the process."""
    before = mem_rss()
    _leaked.append(b"\x01" * (request.megabytes * 1024 * 1024))
    return Memory(pid=os.getpid(), rss_kib_before=before, rss_kib_after=mem_rss())


@typed_task(**{**TRANSIENT_RETRIES, "max_retries": 2, "retry_backoff_max": 2})
def flaky(request: Flaky) -> Outcome:
    """Record each attempt; fail transiently while attempts remain in ``failures``."""
    attempt = current_task.request.retries + 1
    record(f"{request.key}:attempt:{attempt}", attempt=attempt)
    if attempt <= request.failures:
        raise TransientError(f"attempt {attempt} of {request.key} failed")
    return Outcome(applied=True, pid=os.getpid())
