"""Delayed tasks on the real broker: {% if cookiecutter.broker == "redis" %}the visibility-timeout trap and its refusal{% else %}RabbitMQ takes any delay{% endif %}."""

from __future__ import annotations
{% if cookiecutter.broker == "redis" %}
import time
{%- endif %}
import uuid
from typing import Any

import pytest
{%- if cookiecutter.broker == "redis" %}
from celery import Celery
{%- endif %}

from {{ cookiecutter.package_name }}.celery_app import (
    DEFAULT_QUEUE,
    ProjectCelery,
)
{%- if cookiecutter.broker == "redis" %}
from {{ cookiecutter.package_name }}.scheduling import (
    DelayTooLongError,
)
{%- endif %}
from {{ cookiecutter.package_name }}.tasks.notifications import (
    Notification,
    send_notification,
)
{% if cookiecutter.broker == "redis" %}
from ..conftest import RecordingGateway
{%- endif %}
from .conftest import declare_queues, delete_queues

pytestmark = pytest.mark.integration


def queued(app: ProjectCelery) -> int:
    """Messages waiting in the default queue."""
    with app.connection_for_write() as connection:
{%- if cookiecutter.broker == "redis" %}
        # An empty queue is no key at all in Redis (a passive declare would fail), so
        # ask Redis; Any: the stubs know only the abstract channel, without its client.
        channel: Any = connection.default_channel
        return int(channel.client.llen(DEFAULT_QUEUE))
{%- else %}
        queue = app.amqp.queues[DEFAULT_QUEUE](connection.default_channel)
        declared: Any = queue.queue_declare(passive=True)  # stubs say str
        return int(declared.message_count)
{%- endif %}


def note(recipient: str) -> Notification:
    """A notification to a recipient no other test uses."""
    return Notification(recipient=f"{recipient}-{uuid.uuid4()}@example.com", body="due later")
{%- if cookiecutter.broker == "redis" %}


def longest_delay(app: ProjectCelery) -> float:
    """The longest delay send_notification may have: visibility timeout minus hard limit."""
    limit = app.tasks[send_notification.name].time_limit
    assert limit is not None
    return app.settings.broker.visibility_timeout - limit


def test_a_refused_delay_sends_nothing(broker_app: ProjectCelery) -> None:
    # No worker yet (this test comes first in the module): messages stay queued.
    delete_queues(broker_app)
    declare_queues(broker_app)
    broker_app.set_current()
    send_notification.apply_async((note("accepted"),), countdown=1)
    assert queued(broker_app) == 1  # the count sees a publish
    with pytest.raises(DelayTooLongError, match=r"visibility_timeout \(8s\)"):
        send_notification.apply_async((note("refused"),), countdown=longest_delay(broker_app))
    assert queued(broker_app) == 1
    delete_queues(broker_app)


def deliveries(gateway: RecordingGateway, message: Notification) -> int:
    """How many times the worker delivered this notification."""
    return gateway.delivered.count((message.recipient, message.body))


def test_a_delay_just_under_the_limit_runs_once_and_one_past_it_would_run_twice(
    worker_app: ProjectCelery, integration_gateway: RecordingGateway
) -> None:
    timeout = worker_app.settings.broker.visibility_timeout
    sweep = worker_app.conf.broker_transport_options["unacked_restore_interval"]
    allowed, past = note("allowed"), note("past")
    started = time.monotonic()
    allowed_result = send_notification.apply_async(
        (allowed,), countdown=longest_delay(worker_app) - 0.3
    )
    # The trap itself, published past the check: Redis hands the waiting message out
    # again after the timeout (within one sweep), and both copies run when due.
    options: dict[str, Any] = {"countdown": timeout + sweep + 1}
    Celery.send_task(worker_app, send_notification.name, args=[past.model_dump()], **options)
    allowed_result.get(timeout=15)
    deadline = started + timeout + sweep + 4
    while time.monotonic() < deadline and deliveries(integration_gateway, past) < 2:
        time.sleep(0.2)
    assert deliveries(integration_gateway, past) == 2
    assert deliveries(integration_gateway, allowed) == 1
{%- else %}


def test_rabbitmq_takes_a_delay_longer_than_any_visibility_timeout(
    broker_app: ProjectCelery,
) -> None:
    delete_queues(broker_app)
    declare_queues(broker_app)
    broker_app.set_current()
    send_notification.apply_async((note("next-month"),), countdown=30 * 86400)
    assert queued(broker_app) == 1
    delete_queues(broker_app)
{%- endif %}
