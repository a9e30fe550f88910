"""Structured logs for every task run: name, id, duration, state, retries.

Records go through the standard ``logging`` module; ``configure_logging`` picks
JSON lines (production) or readable text (local). Celery's own worker logs the
traceback of a failed task once; these records carry the numbers, not a second copy,
and never a task's arguments or result. Celery's own records carry both; unless
``log.task_data`` is on, ``hide_task_data`` replaces them with a placeholder.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from typing import Any

from celery import Task
from celery.signals import setup_logging, task_postrun, task_prerun, task_retry
from celery.worker.consumer import consumer
from pythonjsonlogger.json import JsonFormatter

from .config.settings import LogSettings

logger = logging.getLogger(__name__)

# Celery's own line for each task received and each task succeeded: our record of the
# run (below) already gives its task, id, state and duration. The "received" one comes
# from the worker's main process, the one that feeds every pool process, and cost about
# 10 % of a short task's throughput (docs/performance.md). Failures and retries are
# still logged; at log.level DEBUG these lines come back too.
CELERY_TASK_LINES = ("celery.worker.strategy", "celery.app.trace")

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
    quiet = logging.WARNING if root.level > logging.DEBUG else logging.NOTSET
    for name in CELERY_TASK_LINES:
        logging.getLogger(name).setLevel(quiet)


# Celery logs task arguments and results, and has no setting to stop it: in the
# "received", "succeeded" and "failed" lines (as format values, and again in the
# ``data`` extra, which JSON logs print), in the pool's DEBUG line for each task, and
# with the body of a message it cannot run.
TASK_DATA_LOGGERS = (
    "celery.app.trace",
    "celery.pool",
    "celery.worker.consumer.consumer",
    "celery.worker.strategy",
)
TASK_DATA_FIELDS = frozenset({"args", "kwargs", "return_value"})
# Messages whose positional values hold a message body or headers: the ones to hide.
_CONSUMER_FORMATS = vars(consumer)  # the celery-types stubs leave these constants out
HIDDEN_POSITIONS: dict[str, tuple[int, ...]] = {
    "TaskPool: Apply %s (args:%s kwargs:%s)": (1, 2),
    _CONSUMER_FORMATS["UNKNOWN_TASK_ERROR"]: (1, 2),
    _CONSUMER_FORMATS["INVALID_TASK_ERROR"]: (1,),
    _CONSUMER_FORMATS["UNKNOWN_FORMAT"]: (0,),
    _CONSUMER_FORMATS["MESSAGE_DECODE_ERROR"]: (3, 4),
}
HIDDEN = "<hidden: log.task_data is off>"


class TaskDataFilter(logging.Filter):
    """Put ``HIDDEN`` in place of task arguments and results in Celery's log records.

    A logger filter edits each record before any handler, ours or another, sees it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Edit the record in place; never drop it."""
        if hasattr(record, "data"):
            record.data = _without_task_data(record.data)
        positions = HIDDEN_POSITIONS.get(str(record.msg), ())
        if isinstance(record.args, tuple):
            record.args = tuple(
                HIDDEN if index in positions else _without_task_data(value)
                for index, value in enumerate(record.args)
            )
        elif record.args is not None:
            record.args = _without_task_data(record.args)
        return True


def _without_task_data(value: Any) -> Any:
    """A mapping with its task-data fields hidden; anything else as it is."""
    if isinstance(value, Mapping):
        return {key: HIDDEN if key in TASK_DATA_FIELDS else item for key, item in value.items()}
    return value


TASK_DATA_FILTER = TaskDataFilter()


def hide_task_data(hidden: bool) -> None:
    """Hide task arguments and results from Celery's logs, or show them (idempotent)."""
    for name in TASK_DATA_LOGGERS:
        celery_logger = logging.getLogger(name)
        if hidden:
            celery_logger.addFilter(TASK_DATA_FILTER)
        else:
            celery_logger.removeFilter(TASK_DATA_FILTER)


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
