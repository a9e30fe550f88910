"""The task-option samples on the real broker and a real worker.

The expiry test comes first: it needs the queue without a worker, and the module's
worker (``worker_app``) starts with the first test that asks for it.
"""

from __future__ import annotations
{% if cookiecutter.broker == "redis" %}
import time
{%- endif %}
import uuid
from datetime import datetime
{%- if cookiecutter.broker == "rabbitmq" %}
from typing import Any
{%- endif %}

import pytest
from celery import states
from celery.backends.base import BaseKeyValueStoreBackend
{%- if cookiecutter.broker == "redis" %}
from celery.contrib.testing.worker import start_worker
{%- endif %}

from {{ cookiecutter.package_name }}.celery_app import (
{%- if cookiecutter.broker == "rabbitmq" %}
    DEAD_LETTER_QUEUE,
{%- endif %}
    ProjectCelery,
{%- if cookiecutter.broker == "rabbitmq" %}
    dead_letter_queue,
{%- endif %}
)
from {{ cookiecutter.package_name }}.tasks.audit import (
    AuditEvent,
    record_audit_event,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    process_data,
)
from {{ cookiecutter.package_name }}.tasks.notifications import (
    LoginCode,
    Notification,
    send_login_code,
    send_notification,
)

from ..conftest import RecordingGateway
from .conftest import declare_queues, delete_queues
from .harness import eventually

pytestmark = pytest.mark.integration
TIMEOUT = 30


def test_a_login_code_that_expired_in_the_queue_is_not_sent(
    broker_app: ProjectCelery, integration_gateway: RecordingGateway
) -> None:
    delete_queues(broker_app)
    declare_queues(broker_app)
    broker_app.set_current()
    login = LoginCode(recipient=f"late-{uuid.uuid4()}@example.com", code="123456")
{%- if cookiecutter.broker == "rabbitmq" %}
    with broker_app.connection_for_write() as connection:
        # Declared now: RabbitMQ drops what it dead-letters to a missing queue.
        dead_letter_queue()(connection.default_channel).declare()
{%- endif %}
    result = send_login_code.apply_async((login,), expires=1)
{%- if cookiecutter.broker == "redis" %}
    time.sleep(1.5)  # no worker yet: the message goes stale in the queue
    with start_worker(
        broker_app, pool="threads", concurrency=1, perform_ping_check=False, shutdown_timeout=15
    ):
        # The worker receives it, sees it expired, and records it revoked unrun.
        # str(): the stubs list the states a result can have, without REVOKED.
        eventually(
            lambda: str(result.state) == states.REVOKED, 10, "the stale code was not revoked"
        )
    # The reason `status` and the API show as its error.
    assert repr(result.result) == "TaskRevokedError('expired')"
{%- else %}
    # RabbitMQ expires the message itself (Celery publishes it with a TTL) and
    # dead-letters it: no worker is ever handed it.
    eventually(
        lambda: dead_letters(broker_app) == 1, 10, f"not dead-lettered to {DEAD_LETTER_QUEUE}"
    )
    assert result.state == states.PENDING
{%- endif %}
    assert all(recipient != login.recipient for recipient, _ in integration_gateway.delivered)
    delete_queues(broker_app)
{%- if cookiecutter.broker == "rabbitmq" %}


def dead_letters(app: ProjectCelery) -> int:
    """Messages in the dead-letter queue."""
    with app.connection_for_write() as connection:
        queue = dead_letter_queue()(connection.default_channel)
        declared: Any = queue.queue_declare(passive=True)  # stubs say str
        return int(declared.message_count)
{%- endif %}


def test_the_worker_holds_gateway_calls_to_the_rate_limit(worker_app: ProjectCelery) -> None:
    rate = float(str(send_notification.rate_limit).removesuffix("/s"))
    count = 11
    results = [
        send_notification.delay(Notification(recipient=f"r{n}@example.com", body="hi"))
        for n in range(count)
    ]
    finished: list[datetime] = []
    for result in results:
        result.get(timeout=TIMEOUT)
        assert isinstance(result.date_done, datetime)
        finished.append(result.date_done)
    # A token bucket of one: the first call goes at once, then one every 1/rate s.
    # Measured against the worker's own clock; without the limit, 4 threads finish
    # these in a few milliseconds.
    spread = (max(finished) - min(finished)).total_seconds()
    assert spread >= 0.8 * (count - 1) / rate


def test_an_audit_event_is_recorded_but_no_result_is_stored(worker_app: ProjectCelery) -> None:
    event = AuditEvent(event_id=f"evt-{uuid.uuid4()}", actor="ann", action="login")
    control = process_data.delay(ProcessDataInput(value=1, label="stored"))
    result = record_audit_event.delay(event)
    ledger = worker_app.provider.get().ledger
    eventually(
        lambda: event.model_dump(mode="json") in ledger.entries(), TIMEOUT, "event not recorded"
    )
    control.get(timeout=TIMEOUT)
    backend = worker_app.backend
    assert isinstance(backend, BaseKeyValueStoreBackend)  # the test profile's Redis
    assert backend.get(backend.get_key_for_task(control.id)) is not None  # the probe works
    assert backend.get(backend.get_key_for_task(result.id)) is None
    assert result.state == states.PENDING
