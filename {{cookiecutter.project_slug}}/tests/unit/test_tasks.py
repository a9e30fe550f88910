"""Task logic, run in-process: no broker, no worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
    current_resources,
)
from {{ cookiecutter.package_name }}.resources import (
    TransientError,
)
from {{ cookiecutter.package_name }}.tasks import (
    media,
)
from {{ cookiecutter.package_name }}.tasks.billing import (
    CreditRequest,
    CreditResult,
    apply_credit,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    BatchSummary,
    ProcessDataInput,
    ProcessDataOutput,
    ProcessedBatch,
    process_data,
    summarize_batch,
)
from {{ cookiecutter.package_name }}.tasks.media import (
    ThumbnailRequest,
    render_thumbnail,
)
from {{ cookiecutter.package_name }}.tasks.notifications import (
    Delivery,
    Notification,
    send_notification,
)
from {{ cookiecutter.package_name }}.tasks.typed import (
    TaskInputError,
)

from ..conftest import RecordingGateway


def test_process_data_contract(local_app: ProjectCelery) -> None:
    output = process_data(ProcessDataInput(value=42, label="answer"))
    assert output.model_dump() == {"message": "Processed: 42 - answer"}


def test_process_data_rejects_bad_input_before_the_body_runs() -> None:
    with pytest.raises(ValidationError, match="value"):
        ProcessDataInput.model_validate({"value": "42", "label": "answer"})


def test_summarize_batch_keeps_order(local_app: ProjectCelery) -> None:
    batch = ProcessedBatch([ProcessDataOutput(message="a"), ProcessDataOutput(message="b")])
    assert summarize_batch(batch) == BatchSummary(count=2, messages=["a", "b"])


def test_render_thumbnail_writes_the_file(local_app: ProjectCelery) -> None:
    thumbnail = render_thumbnail(ThumbnailRequest(source_id="img1", width=4, height=3, passes=2))
    written = Path(thumbnail.path)
    assert written.read_bytes().hex() == thumbnail.digest
    assert written.parent == current_resources().settings.data_dir / "thumbnails"


def test_soft_time_limit_removes_partial_output(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def too_slow(_: ThumbnailRequest) -> bytes:
        raise SoftTimeLimitExceeded

    monkeypatch.setattr(media, "render_pixels", too_slow)
    with pytest.raises(SoftTimeLimitExceeded):
        media.render_into(ThumbnailRequest(source_id="img", width=1, height=1), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_apply_credit_applies_once_per_key(local_app: ProjectCelery) -> None:
    request = CreditRequest(idempotency_key="order-0001", account_id="acct", amount_cents=500)
    first = apply_credit(request)
    redelivered = apply_credit(request)
    assert first == CreditResult(idempotency_key="order-0001", applied=True)
    assert redelivered.applied is False
    assert current_resources().ledger.entries() == [request.model_dump(mode="json")]


def test_transient_errors_are_retried_until_success(
    local_app: ProjectCelery, gateway: RecordingGateway
) -> None:
    gateway.failures, gateway.error = 2, TransientError("partner timed out")
    result = send_notification.apply(args=({"recipient": "ops", "body": "hi"},))
    assert result.successful()
    assert Delivery.model_validate(result.result) == Delivery(recipient="ops", delivered=True)
    assert gateway.calls == 3


def test_retries_stop_after_max_retries(
    local_app: ProjectCelery, gateway: RecordingGateway
) -> None:
    gateway.failures, gateway.error = 100, TransientError("partner down")
    result = send_notification.apply(args=({"recipient": "ops", "body": "hi"},))
    assert result.failed()
    assert isinstance(result.result, TransientError)
    assert gateway.calls == 1 + send_notification.max_retries  # type: ignore[operator]


def test_validation_errors_are_never_retried(
    local_app: ProjectCelery, gateway: RecordingGateway
) -> None:
    result = send_notification.apply(args=({"recipient": "", "body": "hi"},))
    assert result.failed()
    assert isinstance(result.result, TaskInputError)
    reason = "recipient: String should have at least 1 character"
    assert str(result.result) == f"invalid input for send_notification: {reason}"
    assert gateway.calls == 0


def test_notification_direct_call(local_app: ProjectCelery, gateway: RecordingGateway) -> None:
    delivery = send_notification(Notification(recipient="ops", body="hello"))
    assert delivery.delivered
    assert gateway.delivered == [("ops", "hello")]
