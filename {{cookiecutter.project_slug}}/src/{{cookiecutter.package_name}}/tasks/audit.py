"""Audit events: fire-and-forget, so no result is stored.

``ignore_result=True`` keeps a task's return value (and its state) out of the result
store: nobody reads it, and at a high rate it would only fill Redis. The cost: a
caller cannot wait for the task or learn its state; ``status`` answers PENDING for
ever. Use it only where the side effect is the whole point.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from ..celery_app import current_resources
from .typed import TaskModel, typed_task


class AuditEvent(TaskModel):
    """Something a user did, recorded once however often it is delivered."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"event_id": "evt-0001-login", "actor": "ada", "action": "login"}]
        }
    )

    event_id: Annotated[str, Field(min_length=8, max_length=128)]
    actor: Annotated[str, Field(min_length=1, max_length=64)]
    action: Annotated[str, Field(min_length=1, max_length=64)]


class Recorded(TaskModel):
    """Whether this delivery recorded the event (never stored: see the module doc)."""

    event_id: str
    recorded: bool


@typed_task(ignore_result=True)
def record_audit_event(event: AuditEvent) -> Recorded:
    """Record the event in the ledger, keyed by its id (idempotent under redelivery)."""
    ledger = current_resources().ledger
    recorded = ledger.record_once(f"audit:{event.event_id}", event.model_dump(mode="json"))
    return Recorded(event_id=event.event_id, recorded=recorded)
