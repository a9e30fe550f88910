"""The embedded default: a worker and a round trip with no server at all."""

from __future__ import annotations

import pytest
from celery.contrib.testing.worker import start_worker

from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    BatchSummary,
    ProcessDataInput,
    ProcessDataOutput,
    fan_out,
    ordered_chain,
    process_batch,
    process_data,
)

pytestmark = pytest.mark.integration


def test_filesystem_broker_round_trip(local_app: ProjectCelery) -> None:
    with start_worker(local_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        result = process_data.delay(ProcessDataInput(value=1, label="local"))
        assert result.get(timeout=30) == ProcessDataOutput(message="Processed: 1 - local")


def test_canvas_results_on_the_file_backend(local_app: ProjectCelery) -> None:
    records = [ProcessDataInput(value=n, label=f"n{n}") for n in range(3)]
    outputs = [ProcessDataOutput(message=f"Processed: {n} - n{n}") for n in range(3)]
    with start_worker(local_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        fanned_out = fan_out(records)
        # No native join here: Celery calls each task's get(), so a group gives models
        # (on Redis, dicts: test_broker_roundtrip). group_outputs gives models on both.
        assert fanned_out.get(timeout=30) == outputs
        assert process_data.group_outputs(fanned_out, timeout=30) == outputs
        last = ordered_chain([process_data.si(record) for record in records]).delay()
        assert last.get(timeout=30) == outputs[-1]
        summary = process_batch(records).get(timeout=30)
        assert summary == BatchSummary(count=3, messages=[o.message for o in outputs])
