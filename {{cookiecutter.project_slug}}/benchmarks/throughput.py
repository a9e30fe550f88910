"""Throughput: bare Celery, each production setting on its own, and the project.

One worker (prefork, concurrency 2) per round, one producer, ``process_data``'s work:
the enqueue rate, and tasks per second from the first publish to the last result.
Each round runs every variant in turn, starting one further down the list each time,
so a noisy moment or a place in the order does not favour one variant; a variant's
median round counts, and its slowest and fastest rounds show the noise. The typed and
plain rows run the same work in the project's worker, as a typed task and as a plain
Celery task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from statistics import median
from typing import Any

from celery import Celery
from celery.result import AsyncResult

from {{ cookiecutter.package_name }}.celery_app import (
    celery_config,
    create_app,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    process_data,
)

from .bare import bare_app
from .plain import PLAIN_TASK
from .workers import PRODUCTION_LIKE, WorkerSpec, project_settings, running, send_and_wait

RECORD = {"value": 1, "label": "benchmark"}
BASELINE = "bare Celery, defaults"

# The production settings the project turns on, as Celery names them: a row each.
SETTING_ROWS: dict[str, tuple[str, ...]] = {
    "acks_late, reject_on_worker_lost": ("task_acks_late", "task_reject_on_worker_lost"),
    "prefetch_multiplier 1": ("worker_prefetch_multiplier",),
    "max_tasks_per_child": ("worker_max_tasks_per_child",),
    "max_memory_per_child": ("worker_max_memory_per_child",),
}
AMQP_ROWS = {"publisher confirms": ("broker_transport_options",)}  # RabbitMQ only
# What the project leaves off, or sets only for the cpu queue's long tasks: a row each,
# for what it would cost short tasks.
NOT_TAKEN: dict[str, dict[str, Any]] = {
    "track_started (render_thumbnail only)": {"task_track_started": True},
    "max_tasks_per_child 1000 (cpu queue only)": {"worker_max_tasks_per_child": 1000},
    "result_extended (off)": {"result_extended": True},
}


@dataclass(frozen=True)
class Variant:
    """One row: the worker to start, and which task to send it."""

    name: str
    worker: WorkerSpec
    typed: bool


def variants() -> list[Variant]:
    """Bare Celery; plus each setting; plus all of them; plus each not taken; the project."""
    settings = project_settings(PRODUCTION_LIKE)
    production = celery_config(settings)
    named = SETTING_ROWS | (AMQP_ROWS if settings.broker.is_amqp else {})
    rows: dict[str, dict[str, Any]] = {
        name: {key: production[key] for key in keys} for name, keys in named.items()
    }
    # The project sets its time limits per queue, through an annotation: same values.
    limits = settings.tasks
    rows["time limits"] = {
        "task_soft_time_limit": limits.soft_time_limit,
        "task_time_limit": limits.time_limit,
    }
    every = {key: value for config in rows.values() for key, value in config.items()}
    production_like = WorkerSpec("project", settings=PRODUCTION_LIKE)
    no_metrics = WorkerSpec("project", settings={**PRODUCTION_LIKE, "metrics.enabled": "false"})
    warnings_only = WorkerSpec("project", settings={**PRODUCTION_LIKE, "log.level": "WARNING"})
    return [
        Variant(BASELINE, WorkerSpec("bare"), typed=False),
        *(
            Variant(f"bare + {name}", WorkerSpec("bare", celery=config), typed=False)
            for name, config in rows.items()
        ),
        Variant("bare + all the project's settings", WorkerSpec("bare", celery=every), typed=False),
        *(
            Variant(f"bare + {name}", WorkerSpec("bare", celery=config), typed=False)
            for name, config in NOT_TAKEN.items()
        ),
        Variant("project, typed task", production_like, typed=True),
        Variant("project, plain task", production_like, typed=False),
        Variant("project, typed task, metrics off", no_metrics, typed=True),
        Variant("project, typed task, WARNING logs", warnings_only, typed=True),
    ]


def sender(app: Celery, typed: bool) -> Callable[[], AsyncResult[Any]]:
    """A call that publishes one task of ``process_data``'s work through ``app``."""
    if typed:
        record = ProcessDataInput.model_validate(RECORD)
        return lambda: process_data.delay(record)
    task = app.tasks[PLAIN_TASK]
    return lambda: task.delay(**RECORD)


def run(
    tasks: int, rounds: int, only: tuple[str, ...] | None, progress: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Each variant (or those named in ``only``), ``rounds`` times; a row each, its median."""
    project = create_app(project_settings(PRODUCTION_LIKE))
    chosen = [v for v in variants() if only is None or v.name in only]
    measured: dict[str, list[dict[str, float]]] = {}
    for round_number in range(1, rounds + 1):
        start = (round_number - 1) % len(chosen)
        for variant in chosen[start:] + chosen[:start]:
            is_project = variant.worker.kind == "project"
            app = project if is_project else bare_app(variant.worker.celery)
            app.control.purge()
            with running(variant.worker, app) as worker:
                send_and_wait(app, sender(app, variant.typed), max(tasks // 10, 5))  # warm-up
                before = worker.cpu_seconds()
                rates = send_and_wait(app, sender(app, variant.typed), tasks)
                cpu_ms = (worker.cpu_seconds() - before) / tasks * 1000
            if not is_project:
                app.close()
            sample = {"enqueue": rates.enqueue, "end_to_end": rates.end_to_end, "cpu_ms": cpu_ms}
            measured.setdefault(variant.name, []).append(sample)
            progress(
                f"round {round_number}/{rounds}  {variant.name:<48} "
                f"{rates.end_to_end:7.1f} tasks/s  {cpu_ms:5.2f} ms CPU/task"
            )
    baseline = median(sample["end_to_end"] for sample in measured[BASELINE])
    return [summary(variant.name, measured[variant.name], baseline) for variant in chosen]


def summary(name: str, samples: list[dict[str, float]], baseline: float) -> dict[str, Any]:
    """One row: the median round, its share of bare Celery's, and the spread of rounds."""
    rates = [sample["end_to_end"] for sample in samples]
    middle = median(rates)
    return {
        "variant": name,
        "tasks_per_second": middle,
        "vs_bare": middle / baseline,
        "slowest": min(rates),
        "fastest": max(rates),
        "enqueue_per_second": median(sample["enqueue"] for sample in samples),
        "cpu_ms_per_task": median(sample["cpu_ms"] for sample in samples),
        "rounds": rates,
    }
