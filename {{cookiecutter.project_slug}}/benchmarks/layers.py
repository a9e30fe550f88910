"""Layers: what each of the project's own layers adds to a task, timed in this process.

The throughput rows time whole tasks through the broker, and one round there differs
from the next by more than any one layer costs: tens of µs against the milliseconds a
short task costs the producer, the broker and the worker together. Here each layer runs
alone, in this process, with no broker round trip, as ``timeit`` advises: the fastest
of 5 repeats (the least disturbed), in µs per task.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import timeit
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr
from pathlib import Path
from typing import Any

from celery import Task, states
from celery.signals import task_postrun, task_prerun

from {{ cookiecutter.package_name }} import (
    observability,
)
from {{ cookiecutter.package_name }}.celery_app import (
    DEFAULT_QUEUE,
    ProjectCelery,
    create_app,
    send_task_call,
)
from {{ cookiecutter.package_name }}.metrics import (
    STATE_LABELS,
    WorkerMetrics,
    multiprocess_dir,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    process_data,
)
from {{ cookiecutter.package_name }}.tasks.typed import (
    TypedTask,
)

from .plain import PLAIN_TASK
from .throughput import RECORD
from .workers import PRODUCTION_LIKE, project_settings

REPEATS = 5
Row = dict[str, Any]


def timed(call: Callable[[], object], number: int) -> float:
    """µs per call: the fastest of REPEATS runs of ``number`` calls."""
    return min(timeit.repeat(call, number=number, repeat=REPEATS)) / number * 1e6


def run(number: int, progress: Callable[[str], None]) -> list[Row]:
    """Each layer, ``number`` calls a repeat; a row each: where it runs, µs per task."""
    app = create_app(project_settings(PRODUCTION_LIKE))
    rows = publish_rows(app, number) + worker_rows(app, number)
    for row in rows:
        progress(f"{row['side']:<8} {row['layer']:<56} {row['us_per_task']:7.1f} µs")
    return rows


def publish_rows(app: ProjectCelery, number: int) -> list[Row]:
    """What a typed publish adds in the caller: the input's dump, then the publish checks."""
    payload = ProcessDataInput.model_validate(RECORD)
    call = send_task_call(((payload.model_dump(mode="json"),), None), {})
    checks = "payload size" + (", delay (Redis)" if app.settings.broker.is_redis else "")
    return [
        row(
            "publish",
            "typed input to JSON (TypedTask.apply_async)",
            lambda: payload.model_dump(mode="json"),
            number,
        ),
        row(
            "publish",
            f"publish checks: {checks}",
            lambda: app.check_publish(process_data.name, call),
            number,
        ),
    ]


def worker_rows(app: ProjectCelery, number: int) -> list[Row]:
    """What a run adds in the pool process: the typed body, the log record, the metrics."""
    # The registered task objects, as a worker's tracer has them: ``process_data`` itself
    # is the module's proxy, which looks the task up again on every attribute read.
    task = app.tasks[process_data.name]
    if not isinstance(task, TypedTask):
        raise SystemExit(f"{process_data.name} is not a typed task")
    plain = app.tasks[PLAIN_TASK]
    rows = [
        row("worker", "plain task body, for comparison", lambda: plain.run(**RECORD), number),
        row(
            "worker",
            "typed task body: input validated, output dumped",
            lambda: task.run(task.validated(RECORD)),
            number,
        ),
    ]
    with as_worker_run(task):
        for level, line in (("INFO", "one JSON line"), ("WARNING", "no line")):
            with logs_to_nowhere(app, level):
                what = f"run signals, log.level={level}: {line}"
                rows.append(row("worker", what, lambda: run_signals(task), number))
        with worker_metrics() as metrics:
            what = "metrics of a run (metrics.enabled)"
            rows.append(row("worker", what, lambda: record_run(metrics, task), number))
    return rows


def row(side: str, layer: str, call: Callable[[], object], number: int) -> Row:
    """One timed layer."""
    return {"side": side, "layer": layer, "us_per_task": timed(call, number)}


def run_signals(task: Task[Any, Any]) -> None:
    """The signals Celery sends around a run, to every receiver the project connected."""
    task_id = task.request.id
    task_prerun.send(sender=task, task_id=task_id, task=task, args=(), kwargs={})
    task_postrun.send(
        sender=task,
        task_id=task_id,
        task=task,
        args=(),
        kwargs={},
        retval=None,
        state=states.SUCCESS,
    )


def record_run(metrics: WorkerMetrics, task: Task[Any, Any]) -> None:
    """What the metrics record for one successful run."""
    metrics.run_started(task)
    metrics.run_ended(task, states.SUCCESS)
    metrics.count(task, STATE_LABELS[states.SUCCESS])


@contextmanager
def as_worker_run(task: Task[Any, Any]) -> Iterator[None]:
    """``task.request`` as a worker's first delivery from the default queue has it."""
    delivery = {"routing_key": DEFAULT_QUEUE, "redelivered": False}
    task.push_request(id="layers", delivery_info=delivery, published_at=time.time())
    try:
        yield
    finally:
        task.pop_request()


@contextmanager
def logs_to_nowhere(app: ProjectCelery, level: str) -> Iterator[None]:
    """The project's log configuration at ``level``, writing to /dev/null; then as before."""
    root = logging.getLogger()
    handlers, root_level = root.handlers[:], root.level
    with open(os.devnull, "w") as sink:  # noqa: PTH123 - a stream for the log handler
        with redirect_stderr(sink):  # configure_logging writes to sys.stderr
            observability.configure_logging(app.settings.log.model_copy(update={"level": level}))
        try:
            yield
        finally:
            root.handlers[:] = handlers
            root.setLevel(root_level)


@contextmanager
def worker_metrics() -> Iterator[WorkerMetrics]:
    """A worker's metrics in a folder of their own, for as long as the block runs."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-metrics-") as folder,
        multiprocess_dir(Path(folder) / "metrics"),
    ):
        yield WorkerMetrics.create("layers@bench", (DEFAULT_QUEUE,), max_memory_kib=None)
