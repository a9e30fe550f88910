"""Load: 10,000 tasks from 4 concurrent producers through the real broker.

Every task is accounted for (a result for each, none lost) and none ran twice (the
worker logs one record per run). Throughput is printed; run with ``-s`` to see it.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    process_data,
)

from .conftest import RunWorker
from .harness import final_states

pytestmark = [pytest.mark.integration, pytest.mark.load]
TASKS, PRODUCERS = 10_000, 4
DEADLINE = 240


def produce(producer: int, count: int) -> list[str]:
    """Send ``count`` tasks; their ids."""
    return [
        process_data.delay(ProcessDataInput(value=n, label=f"producer-{producer}")).id
        for n in range(count)
    ]


def runs_per_task(worker_log: str) -> Counter[str]:
    """How many times the worker ran each task, from its JSON task records."""
    runs: Counter[str] = Counter()
    for line in worker_log.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line that is not a task record (e.g. Celery's banner)
        if isinstance(record, dict) and "duration_ms" in record:
            runs[record["task_id"]] += 1
    return runs


@pytest.mark.timeout(DEADLINE + 60)
def test_ten_thousand_tasks_from_four_producers(
    broker_app: ProjectCelery, run_worker: RunWorker
) -> None:
    log_every_run = {"log.level": "INFO", "log.json_format": "true"}
    with run_worker(concurrency=2, settings=log_every_run) as worker:
        begun = time.monotonic()
        with ThreadPoolExecutor(PRODUCERS) as pool:
            batches = list(pool.map(produce, range(PRODUCERS), [TASKS // PRODUCERS] * PRODUCERS))
        published = time.monotonic()
        ids = [task_id for batch in batches for task_id in batch]
        states = final_states(broker_app, ids, timeout=DEADLINE)
        finished = time.monotonic()
        time.sleep(1)  # the worker logs a run just after storing its result
        runs = runs_per_task(worker.output())

    assert len(set(ids)) == TASKS
    assert Counter(states.values()) == {"SUCCESS": TASKS}
    assert sorted(runs[task_id] for task_id in ids) == [1] * TASKS
    print(
        f"\n{TASKS} tasks via {broker_app.settings.broker.scheme}: "
        f"published in {published - begun:.1f} s ({TASKS / (published - begun):.0f}/s), "
        f"all done in {finished - begun:.1f} s ({TASKS / (finished - begun):.0f}/s)"
    )
