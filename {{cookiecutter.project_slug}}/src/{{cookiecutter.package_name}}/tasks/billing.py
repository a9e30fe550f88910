"""Billing: an idempotent task, safe under at-least-once delivery.

With acks-late a task whose worker dies is delivered again, so any task with a side
effect may run twice. The idempotency key makes the second run a no-op: the ledger
records the key and the effect in one atomic step.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from ..celery_app import current_resources
from .typed import TaskModel, typed_task


class CreditRequest(TaskModel):
    """Credit an account once, whatever the number of deliveries."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "idempotency_key": "refund-2024-0001",
                    "account_id": "acct-42",
                    "amount_cents": 1500,
                }
            ]
        }
    )

    idempotency_key: Annotated[str, Field(min_length=8, max_length=128)]
    account_id: Annotated[str, Field(min_length=1, max_length=64)]
    amount_cents: Annotated[int, Field(gt=0)]


class CreditResult(TaskModel):
    """Whether this delivery applied the credit or found it already applied."""

    idempotency_key: str
    applied: bool


@typed_task()
def apply_credit(request: CreditRequest) -> CreditResult:
    """Record the credit unless its idempotency key was already recorded."""
    ledger = current_resources().ledger
    applied = ledger.record_once(request.idempotency_key, request.model_dump(mode="json"))
    return CreditResult(idempotency_key=request.idempotency_key, applied=applied)
