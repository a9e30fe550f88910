"""The task-option samples: rate_limit, expires and ignore_result, as a worker sees them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
    current_resources,
)
from {{ cookiecutter.package_name }}.tasks.audit import (
    AuditEvent,
    Recorded,
    record_audit_event,
)
from {{ cookiecutter.package_name }}.tasks.notifications import (
    GATEWAY_RATE_LIMIT,
    LOGIN_CODE_TTL,
    LoginCode,
    send_login_code,
    send_notification,
)

from ..conftest import RecordingGateway

CODE = LoginCode(recipient="ann@example.com", code="123456")


def test_gateway_tasks_carry_the_rate_limit_a_worker_applies(local_app: ProjectCelery) -> None:
    for task in (send_notification, send_login_code):
        assert local_app.tasks[task.name].rate_limit == GATEWAY_RATE_LIMIT


def test_a_login_code_message_expires_after_its_ttl(local_app: ProjectCelery) -> None:
    before = datetime.now(UTC)
    message = local_app.amqp.as_task_v2(
        "id-1", send_login_code.name, expires=local_app.tasks[send_login_code.name].expires
    )
    expires = datetime.fromisoformat(message.headers["expires"])
    assert timedelta(seconds=LOGIN_CODE_TTL - 5) < expires - before
    assert expires - before <= timedelta(seconds=LOGIN_CODE_TTL + 5)


def test_a_login_code_in_time_is_sent(local_app: ProjectCelery, gateway: RecordingGateway) -> None:
    assert send_login_code(CODE).delivered
    assert gateway.delivered == [("ann@example.com", "Your login code: 123456")]


def test_audit_events_store_no_result(local_app: ProjectCelery) -> None:
    assert local_app.tasks[record_audit_event.name].ignore_result
    event = AuditEvent(event_id="evt-00001", actor="ann", action="login")
    assert record_audit_event(event) == Recorded(event_id="evt-00001", recorded=True)
    assert record_audit_event(event) == Recorded(event_id="evt-00001", recorded=False)
    entries = current_resources().ledger.entries()
    assert entries == [event.model_dump(mode="json")]
