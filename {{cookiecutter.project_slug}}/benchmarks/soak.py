"""Soak: worker memory over many tasks, and a leaking task with and without the guard.

First ``process_data`` runs ``--size``'s soak count of times in one worker with
recycling off, so nothing hides a leak: resident memory (the worker and its pool
processes) is sampled after each batch, and growth is the last batch's over the
first's. Then ``render_thumbnail`` with ``tasks.leak_thumbnails`` on (it keeps each
call's 1 MB of pixels) runs on the cpu queue's worker twice: with recycling off, and
with ``worker.cpu.max_memory_per_child``, which replaces a pool process once it holds
more than the limit.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from celery import Celery

from {{ cookiecutter.package_name }}.celery_app import (
    CPU_QUEUE,
    create_app,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    process_data,
)
from {{ cookiecutter.package_name }}.tasks.media import (
    ThumbnailRequest,
    render_thumbnail,
)

from .workers import (
    PRODUCTION_LIKE,
    WorkerSpec,
    project_settings,
    running,
    send_and_wait,
)

MIB = 2**20
NO_RECYCLING = {"max_tasks_per_child": str(10**9), "max_memory_per_child": str(10**9)}
# Each call keeps its 1 MB of pixels (the leak); the guard's limit is per pool process.
MEGAPIXEL = ThumbnailRequest(source_id="leak", width=1000, height=1000)
GUARD_KIB = 150_000  # per pool process: its ~60 MiB at start, plus ~90 leaked thumbnails


def run(tasks: int, batch: int, leak_tasks: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """The soak's samples and growth, and the leak's samples with and without the guard."""
    settings = {
        **PRODUCTION_LIKE,
        **{f"worker.{key}": value for key, value in NO_RECYCLING.items()},
    }
    app = create_app(project_settings(settings))
    record = ProcessDataInput(value=1, label="soak")
    samples = []
    with running(WorkerSpec("project", settings=settings), app) as worker:
        for done in range(batch, tasks + 1, batch):
            send_and_wait(app, lambda: process_data.delay(record), batch)
            samples.append({"tasks": done, "rss_mib": worker.rss_bytes() / MIB})
            progress(f"soak  {done:6} tasks  {samples[-1]['rss_mib']:7.1f} MiB")
    growth = samples[-1]["rss_mib"] / samples[0]["rss_mib"] - 1
    progress(f"soak  growth from the first batch to the last: {growth * 100:+.1f} %")
    leak = {
        name: leaking(app, guard, leak_tasks, max(leak_tasks // 20, 1), progress)
        for name, guard in (
            ("no guard", NO_RECYCLING),
            ("guard", {"max_memory_per_child": str(GUARD_KIB)}),
        )
    }
    return {"process_data": {"samples": samples, "growth": growth, "batch": batch}, "leak": leak}


def leaking(
    app: Celery, guard: dict[str, str], tasks: int, batch: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Run the leaking thumbnail ``tasks`` times; RSS and pool processes after each batch."""
    settings = {
        **PRODUCTION_LIKE,
        "tasks.leak_thumbnails": "true",
        **{f"worker.{CPU_QUEUE}.{key}": value for key, value in guard.items()},
    }
    samples = []
    pids: set[int] = set()
    with running(WorkerSpec("project", settings=settings, queue=CPU_QUEUE), app) as worker:
        for done in range(batch, tasks + 1, batch):
            send_and_wait(app, partial(render_thumbnail.delay, MEGAPIXEL), batch)
            pids |= worker.pool_pids()
            samples.append({"tasks": done, "rss_mib": worker.rss_bytes() / MIB})
            rss = samples[-1]["rss_mib"]
            progress(f"leak  {done:6} tasks  {rss:7.1f} MiB  {len(pids)} pool processes seen")
    return {"samples": samples, "pool_processes_seen": len(pids), "settings": guard}
