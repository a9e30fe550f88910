"""What ``dead-letters`` reads from the headers RabbitMQ adds when it dead-letters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kombu.message import Message

from {{ cookiecutter.package_name }}.dead_letters import (
    DEATH_HEADERS,
    DeadLetter,
    describe,
)

TASK = "{{ cookiecutter.package_name }}.tasks.data.process_data"
FIRST = datetime(2026, 1, 5, 10, 12, 3)  # py-amqp decodes AMQP timestamps naive, in UTC
LATER = datetime(2026, 1, 5, 11, 0, 0)


def dead_letter(headers: dict[str, Any]) -> Message:
    """A message as taken from dead_letter, with these headers."""
    return Message(body="[]", headers={"id": "t-1", "task": TASK, **headers})


def death(queue: str, reason: str, count: int, time: datetime) -> dict[str, Any]:
    """One x-death entry, as RabbitMQ 4 writes it."""
    return {
        "count": count,
        "reason": reason,
        "queue": queue,
        "time": time,
        "exchange": "",
        "routing-keys": [queue],
    }


def test_a_rejected_task_is_described_by_its_first_death() -> None:
    message = dead_letter(
        {
            # Newest first: expired from cpu later, rejected by default's worker first (twice).
            "x-death": [death("cpu", "expired", 1, LATER), death("default", "rejected", 2, FIRST)],
            "x-first-death-exchange": "",
            "x-first-death-queue": "default",
            "x-first-death-reason": "rejected",
        }
    )
    assert describe(message) == DeadLetter(
        task_id="t-1",
        task=TASK,
        queue="default",
        reason="rejected",
        first_death=FIRST.replace(tzinfo=UTC),
        deaths=2,
    )


def test_a_message_without_death_headers_says_what_it_cannot_know() -> None:
    # Published straight to dead_letter by someone: no queue to replay it to.
    assert describe(dead_letter({})) == DeadLetter(
        task_id="t-1", task=TASK, queue=None, reason=None, first_death=None, deaths=0
    )


def test_a_replay_drops_every_death_header_and_keeps_celerys() -> None:
    headers = ["x-death", "x-first-death-queue", "x-last-death-reason", "id", "task", "retries"]
    assert [name for name in headers if not name.startswith(DEATH_HEADERS)] == [
        "id",
        "task",
        "retries",
    ]
