"""Canvas failures through the real broker and a real worker: what runs, what is logged."""

from __future__ import annotations

import logging
import time

import pytest
from celery.exceptions import ChordError

from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    ProcessDataOutput,
    batch_chord,
    ordered_chain,
    process_data,
    process_in_order,
)
from {{ cookiecutter.package_name }}.tasks.typed import (
    TaskInputError,
)

pytestmark = pytest.mark.integration
TIMEOUT = 30
RECORD = ProcessDataInput(value=1, label="a")
# What another producer might publish: the worker refuses it, so the task fails.
INVALID = {"value": "x", "label": 1}


def failures_logged(caplog: pytest.LogCaptureFixture, count: int) -> list[logging.LogRecord]:
    """The errback's records, waiting briefly: it runs just after the failure is stored."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        records = [r for r in caplog.records if hasattr(r, "failed_task_id")]
        if len(records) >= count:
            return records
        time.sleep(0.05)
    return [r for r in caplog.records if hasattr(r, "failed_task_id")]


def test_a_failed_header_task_stops_the_chord_and_is_logged(
    worker_app: ProjectCelery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    invalid = process_data.signature((INVALID,))
    invalid_id = invalid.freeze().id
    result = batch_chord([process_data.s(RECORD), invalid]).apply_async()
    with pytest.raises(TaskInputError):  # get() raises the first failure among the parents
        result.get(timeout=TIMEOUT)
    # The summary never ran: its result is the chord's error, stored in its place.
    error = result.get(timeout=TIMEOUT, propagate=False, follow_parents=False)
    assert isinstance(error, ChordError)
    assert f"Dependency {invalid_id} raised TaskInputError" in str(error)
    (logged,) = failures_logged(caplog, 1)
    assert logged.failed_task_id == result.id  # type: ignore[attr-defined]
    assert invalid_id in logged.getMessage()
    assert "ChordError" in logged.getMessage()


def test_a_failed_step_stops_the_chain_and_is_logged(
    worker_app: ProjectCelery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    invalid = process_data.signature((INVALID,), immutable=True)
    result = ordered_chain([process_data.si(RECORD), invalid, process_data.si(RECORD)])
    last = result.apply_async()
    with pytest.raises(TaskInputError):
        last.get(timeout=TIMEOUT)
    failed = last.parent
    assert failed is not None
    (logged,) = failures_logged(caplog, 1)
    assert logged.failed_task_id == failed.id  # type: ignore[attr-defined]
    assert "TaskInputError" in logged.getMessage()
    # The step after the failure did not run: it holds the failure, not an output.
    assert isinstance(last.result, TaskInputError)


def test_records_processed_in_order_return_the_last_output(worker_app: ProjectCelery) -> None:
    records = [ProcessDataInput(value=n, label=f"n{n}") for n in range(3)]
    last = process_in_order(records).get(timeout=TIMEOUT)
    assert last == ProcessDataOutput(message="Processed: 2 - n2")
