"""Each queue has its own worker: a backlog on ``cpu`` never delays ``default``.

Real worker processes (``worker --queue NAME``) on the real broker. The cpu work is
``fault_tasks.work_then_apply`` sent to the cpu queue: it holds the cpu worker for a
known time, where a real thumbnail's duration depends on the machine.
"""

from __future__ import annotations

import time

import pytest

from {{ cookiecutter.package_name }}.celery_app import (
    CPU_QUEUE,
    ProjectCelery,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    ProcessDataOutput,
    process_data,
)
from {{ cookiecutter.package_name }}.tasks.media import (
    ThumbnailRequest,
    render_thumbnail,
)

from .conftest import RunWorker, declare_queues
from .harness import FAULT_TASKS, eventually, final_states, queued, unique

pytestmark = pytest.mark.integration
# A default task on an idle default worker is done well within this (the cpu backlog
# below would hold a shared worker for 5 s).
PROMPT = 4.0
CPU_SECONDS = 2.5


def process_promptly(label: str) -> float:
    """Run a default-queue task; the seconds it took, failing if not within PROMPT."""
    started = time.monotonic()
    result = process_data.delay(ProcessDataInput(value=1, label=label))
    assert result.get(timeout=PROMPT) == ProcessDataOutput(message=f"Processed: 1 - {label}")
    return time.monotonic() - started


def test_default_is_served_while_the_cpu_worker_is_busy(
    broker_app: ProjectCelery, run_worker: RunWorker
) -> None:
    with (
        run_worker(queue="cpu", concurrency=1),
        run_worker(queue="default", concurrency=1),
    ):
        declare_queues(broker_app)
        backlog = [
            broker_app.send_task(
                f"{FAULT_TASKS}.work_then_apply",
                args=[{"key": unique("cpu-busy"), "seconds": CPU_SECONDS}],
                queue=CPU_QUEUE,
            )
            for _ in range(2)
        ]
        eventually(lambda: backlog[0].state == "STARTED", 15, "the cpu worker took no task")
        took = process_promptly("beside a busy cpu worker")
        # Done while the cpu worker still has its backlog: nothing waited behind it.
        assert backlog[-1].state != "SUCCESS", f"the cpu backlog drained first ({took:.1f} s)"
        assert took < CPU_SECONDS, f"{took:.1f} s: the default task waited for cpu work"
        # Let the cpu work finish, so no unacknowledged message outlives the test.
        states = final_states(broker_app, [result.id for result in backlog], timeout=20)
        assert set(states.values()) == {"SUCCESS"}


def test_default_is_served_while_no_cpu_worker_runs(
    broker_app: ProjectCelery, run_worker: RunWorker
) -> None:
    with run_worker(queue="default", concurrency=1):
        declare_queues(broker_app)  # the default worker declares only its own queue
        thumbnails = [
            render_thumbnail.delay(ThumbnailRequest(source_id=f"waits-{n}", width=4, height=4))
            for n in range(3)
        ]
        process_promptly("with no cpu worker")
        assert queued(broker_app, CPU_QUEUE) == 3, "the default worker took cpu tasks"
        assert {result.state for result in thumbnails} == {"PENDING"}
