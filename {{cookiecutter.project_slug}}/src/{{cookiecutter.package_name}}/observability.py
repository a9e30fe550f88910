"""Structured logs for every task run: name, id, duration, state, retries.

Records go through the standard ``logging`` module; ``configure_logging`` picks
JSON lines (production) or readable text (local). Celery's own worker logs the
traceback of a failed task once; these records carry the numbers, not a second copy.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from celery import Task
from celery.signals import setup_logging, task_postrun, task_prerun, task_retry
from pythonjsonlogger.json import JsonFormatter

from .config.settings import LogSettings

logger = logging.getLogger(__name__)

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(log: LogSettings) -> None:
    """Send all logs to stderr as JSON lines or readable text."""
    handler = logging.StreamHandler(sys.stderr)
    if log.json_format:
        handler.setFormatter(JsonFormatter(JSON_FIELDS, rename_fields={"levelname": "level"}))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(log.level.upper())


def connect_signals() -> None:
    """Hook the task-run log records into Celery (idempotent)."""
    task_prerun.connect(_on_prerun, weak=False, dispatch_uid="observability.prerun")
    task_postrun.connect(_on_postrun, weak=False, dispatch_uid="observability.postrun")
    task_retry.connect(_on_retry, weak=False, dispatch_uid="observability.retry")
    # Connecting to setup_logging stops Celery from installing its own handlers;
    # the CLI configures logging before the worker starts.
    setup_logging.connect(_keep_our_logging, weak=False, dispatch_uid="observability.logging")


def task_record(
    task: Task[Any, Any], task_id: str, state: str, duration_ms: float
) -> dict[str, Any]:
    """The structured fields of one task run."""
    return {
        "task_name": task.name,
        "task_id": task_id,
        "state": state,
        "duration_ms": round(duration_ms, 3),
        "retries": task.request.retries or 0,
    }


def _on_prerun(task: Task[Any, Any], **_: Any) -> None:
    # The start time lives on the request of this run, not in a shared dict.
    task.request.update(started_monotonic=time.monotonic())


def _on_postrun(task_id: str, task: Task[Any, Any], state: str | None = None, **_: Any) -> None:
    started = getattr(task.request, "started_monotonic", None)
    duration_ms = (time.monotonic() - started) * 1000 if started is not None else 0.0
    record = task_record(task, task_id, state or "UNKNOWN", duration_ms)
    level = logging.INFO if state == "SUCCESS" else logging.WARNING
    logger.log(
        level, "task %s %s in %.1f ms", task.name, record["state"], duration_ms, extra=record
    )


def _on_retry(request: Any, reason: object, **_: Any) -> None:
    logger.warning(
        "task %s will retry: %s",
        request.task,
        reason,
        extra={"task_name": request.task, "task_id": request.id, "retries": request.retries},
    )


def _keep_our_logging(**_: Any) -> None:
    """Celery calls this instead of configuring logging itself."""
