"""Typed tasks through the real broker and a real worker."""

from __future__ import annotations

import logging
import time
import uuid

import pytest

from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
)
from {{ cookiecutter.package_name }}.resources import (
    TransientError,
)
from {{ cookiecutter.package_name }}.tasks.billing import (
    CreditRequest,
    apply_credit,
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
from {{ cookiecutter.package_name }}.tasks.media import (
    ThumbnailRequest,
    render_thumbnail,
)
from {{ cookiecutter.package_name }}.tasks.notifications import (
    Notification,
    send_notification,
)
from {{ cookiecutter.package_name }}.tasks.typed import (
    TaskInputError,
)

from ..conftest import RecordingGateway

pytestmark = pytest.mark.integration
TIMEOUT = 30


def test_process_data_round_trip(worker_app: ProjectCelery) -> None:
    result = process_data.delay(ProcessDataInput(value=7, label="seven"))
    assert result.get(timeout=TIMEOUT) == ProcessDataOutput(message="Processed: 7 - seven")


def test_invalid_message_from_another_producer_fails_on_the_worker(
    worker_app: ProjectCelery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    result = worker_app.send_task(process_data.name, args=[{"value": "x", "label": 1}])
    result.get(timeout=TIMEOUT, propagate=False)
    assert result.state == "FAILURE"
    assert isinstance(result.result, TaskInputError)

    def logged() -> tuple[list[logging.LogRecord], list[logging.LogRecord]]:
        mine = [r for r in caplog.records if result.id in r.getMessage() + str(vars(r))]
        return [r for r in mine if r.exc_info], [r for r in mine if hasattr(r, "duration_ms")]

    deadline = time.monotonic() + 5  # the worker logs just after storing the result
    while not all(logged()) and time.monotonic() < deadline:
        time.sleep(0.05)
    tracebacks, records = logged()
    assert len(tracebacks) == 1  # Celery's own error log; ours carries the numbers only
    assert [r.state for r in records] == ["FAILURE"]  # type: ignore[attr-defined]


def test_fan_out_and_chord(worker_app: ProjectCelery) -> None:
    records = [ProcessDataInput(value=n, label=f"n{n}") for n in range(5)]
    fanned_out = fan_out(records)
    # The Redis result backend joins a group in one read: get() gives the JSON dicts
    # (the local file backend gives models, see test_local_roundtrip), which is why
    # the README types it Any and points to group_outputs.
    assert fanned_out.get(timeout=TIMEOUT) == [
        {"message": f"Processed: {n} - n{n}"} for n in range(5)
    ]
    assert process_data.group_outputs(fanned_out, timeout=TIMEOUT) == [
        ProcessDataOutput(message=f"Processed: {n} - n{n}") for n in range(5)
    ]
    for child in fanned_out.results or ():  # the README's other way to the models
        assert isinstance(child.get(timeout=TIMEOUT), ProcessDataOutput)
    # A chain or chord gives its last task's model on this backend too.
    last = ordered_chain([process_data.si(record) for record in records]).delay()
    assert isinstance(last.get(timeout=TIMEOUT), ProcessDataOutput)
    summary = process_batch(records).get(timeout=TIMEOUT)
    assert isinstance(summary, BatchSummary)
    assert summary.count == 5
    assert summary.messages[0] == "Processed: 0 - n0"


def test_cpu_task_runs_on_the_cpu_queue(worker_app: ProjectCelery) -> None:
    result = render_thumbnail.delay(ThumbnailRequest(source_id="img", width=8, height=8))
    assert result.get(timeout=TIMEOUT).source_id == "img"


def test_redelivered_credit_applies_once(worker_app: ProjectCelery) -> None:
    request = CreditRequest(
        idempotency_key=f"test-{uuid.uuid4()}", account_id="acct", amount_cents=100
    )
    first = apply_credit.delay(request).get(timeout=TIMEOUT)
    again = apply_credit.delay(request).get(timeout=TIMEOUT)
    assert (first.applied, again.applied) == (True, False)
    ledger = worker_app.provider.get().ledger
    assert [e.get("idempotency_key") for e in ledger.entries()].count(request.idempotency_key) == 1


def test_transient_failures_are_retried_by_the_worker(
    worker_app: ProjectCelery, integration_gateway: RecordingGateway
) -> None:
    integration_gateway.calls, integration_gateway.failures = 0, 2
    integration_gateway.error = TransientError("partner timed out")
    result = send_notification.delay(Notification(recipient="ops", body="retry me"))
    assert result.get(timeout=TIMEOUT).delivered
    assert integration_gateway.calls == 3
