"""Payload size: the cost of 100 B, 10 KB and 1 MB of JSON per task, and the limit.

``process_data`` with a label long enough that its input is that many bytes of JSON
(its output echoes the label, so the result store carries as much). The producer
refuses a payload over ``tasks.max_payload_bytes`` before anything is published: the
last row shows the 1 MB payload refused under the default limit, with its message.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from {{ cookiecutter.package_name }}.celery_app import (
    create_app,
)
from {{ cookiecutter.package_name }}.payload_size import (
    PayloadTooLargeError,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    process_data,
)

from .workers import PRODUCTION_LIKE, WorkerSpec, project_settings, running, send_and_wait

PAYLOADS = {"100 B": 100, "10 KB": 10_000, "1 MB": 1_000_000}
BUDGET = 100_000_000  # bytes of payload per size, so 1 MB payloads stay bounded too


def record_of(size: int) -> ProcessDataInput:
    """An input whose JSON is ``size`` bytes."""
    overhead = len(ProcessDataInput(value=1, label="").model_dump_json())
    return ProcessDataInput(value=1, label="x" * (size - overhead))


def run(tasks: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """A row per payload size, then the default limit's answer to the largest."""
    largest = record_of(max(PAYLOADS.values()))
    refusal = refused(largest)
    progress(f"payload  the default limit: {refusal}")
    settings = {**PRODUCTION_LIKE, "tasks.max_payload_bytes": str(2 * max(PAYLOADS.values()))}
    app = create_app(project_settings(settings))
    rows = []
    with running(WorkerSpec("project", settings=settings), app) as worker:
        for name, size in PAYLOADS.items():
            record = record_of(size)
            count = max(1, min(tasks, BUDGET // size))
            send_and_wait(app, partial(process_data.delay, record), max(count // 10, 1))  # warm-up
            before = worker.cpu_seconds()
            rates = send_and_wait(app, partial(process_data.delay, record), count)
            cpu_ms = (worker.cpu_seconds() - before) / count * 1000
            rows.append(
                {
                    "payload": name,
                    "bytes": size,
                    "tasks": count,
                    "tasks_per_second": rates.end_to_end,
                    "enqueue_per_second": rates.enqueue,
                    "megabytes_per_second": rates.end_to_end * size / 1e6,
                    "cpu_ms_per_task": cpu_ms,
                }
            )
            progress(
                f"payload  {name:>6}  {rates.end_to_end:8.1f} tasks/s  {cpu_ms:7.2f} ms CPU/task"
            )
    return {"rows": rows, "default_limit_refuses_largest": refusal}


def refused(record: ProcessDataInput) -> str:
    """What publishing ``record`` under the default limit says (nothing is published)."""
    app = create_app(project_settings(PRODUCTION_LIKE))
    try:
        app.tasks[process_data.name].delay(record)
    except PayloadTooLargeError as error:
        return str(error)
    finally:
        app.close()
    raise SystemExit("the default tasks.max_payload_bytes let a 1 MB payload through")
