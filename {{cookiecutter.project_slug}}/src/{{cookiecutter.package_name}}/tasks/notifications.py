"""Notifications: retries for transient failures, never for bad input."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field

from ..celery_app import current_resources
from ..resources import TransientError
from .typed import TaskInputError, TaskModel, typed_task


class Notification(TaskModel):
    """A message for a partner system."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"recipient": "ops@example.com", "body": "Disk almost full"}]
        }
    )

    recipient: Annotated[str, Field(min_length=1, max_length=254)]
    body: Annotated[str, Field(max_length=10_000)]


class Delivery(TaskModel):
    """Proof of delivery."""

    recipient: str
    delivered: bool


# Exponential backoff (1, 2, 4, ... s, capped at 60) with jitter so a burst of
# failures does not retry in lockstep; bad input fails at once, retrying cannot fix it.
# After the last retry the task fails for good (and RabbitMQ dead-letters it).
TRANSIENT_RETRIES: dict[str, Any] = {
    "autoretry_for": (TransientError,),
    "dont_autoretry_for": (TaskInputError,),
    "retry_backoff": 1,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 5,
}


# The partner gateway accepts so many calls a second; Celery holds back the rest.
# A rate limit is per worker process group (each worker has its own token bucket):
# with N workers the gateway sees up to N times this.
GATEWAY_RATE_LIMIT = "10/s"

# A login code is valid for 5 minutes: a message still queued after that is revoked
# by the worker instead of sending a code that no longer works.
LOGIN_CODE_TTL = 300


class LoginCode(TaskModel):
    """A one-time login code to send."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"recipient": "ada@example.com", "code": "424242"}]}
    )

    recipient: Annotated[str, Field(min_length=1, max_length=254)]
    code: Annotated[str, Field(pattern=r"^[0-9]{6}$")]


@typed_task(**TRANSIENT_RETRIES, rate_limit=GATEWAY_RATE_LIMIT)
def send_notification(notification: Notification) -> Delivery:
    """Deliver a notification through the partner gateway."""
    current_resources().gateway.deliver(notification.recipient, notification.body)
    return Delivery(recipient=notification.recipient, delivered=True)


@typed_task(expires=LOGIN_CODE_TTL, rate_limit=GATEWAY_RATE_LIMIT)
def send_login_code(login: LoginCode) -> Delivery:
    """Send a login code, unless it expired while queued (then it is revoked unsent)."""
    current_resources().gateway.deliver(login.recipient, f"Your login code: {login.code}")
    return Delivery(recipient=login.recipient, delivered=True)
