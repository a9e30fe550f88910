"""RabbitMQ's dead-letter queue: list what it holds, replay it, purge it.

RabbitMQ moves a message a worker rejected (failed for good, unknown task, refused
content) or that expired into ``dead_letter`` and records why in its headers: ``x-death``
(one entry per queue and reason, with a count and a time) and ``x-first-death-queue``,
``-reason``, ``-exchange``. Nothing consumes the queue: these functions take its
messages without acknowledging them, so whatever they do not acknowledge goes back when
their channel closes, each to its place (RabbitMQ requeues a message where it was).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kombu import Connection, Producer, Queue
from kombu.message import Message

from .celery_app import dead_letter_queue, task_queues
from .config import Settings

# Headers RabbitMQ writes when it dead-letters a message. A replay drops them: the
# replayed message is a new publish, and a second death records its own.
DEATH_HEADERS = ("x-death", "x-first-death-", "x-last-death-")
# Properties a replay keeps (the body, its type and encoding, and the headers as well).
KEPT_PROPERTIES = ("correlation_id", "reply_to", "priority", "delivery_mode")


@dataclass(frozen=True)
class DeadLetter:
    """One message in the dead-letter queue: which task, and how it got there."""

    task_id: str | None
    task: str | None
    # The work queue it died in, where a replay sends it.
    queue: str | None
    # rejected (the worker refused it or it failed for good), expired, maxlen, ...
    reason: str | None
    first_death: datetime | None
    # Times it was dead-lettered from that queue for that reason.
    deaths: int


def describe(message: Message) -> DeadLetter:
    """What a dead-lettered message's headers say about it."""
    headers: dict[str, Any] = message.headers or {}
    queue, reason = headers.get("x-first-death-queue"), headers.get("x-first-death-reason")
    first: dict[str, Any] = next(
        (
            death
            for death in headers.get("x-death") or []
            if (death.get("queue"), death.get("reason")) == (queue, reason)
        ),
        {},
    )
    time: datetime | None = first.get("time")
    return DeadLetter(
        task_id=headers.get("id"),
        task=headers.get("task"),
        queue=queue,
        reason=reason,
        # py-amqp decodes an AMQP timestamp (seconds since the epoch) as a naive UTC time.
        first_death=time.replace(tzinfo=UTC) if time else None,
        deaths=int(first.get("count", 0)),
    )


@contextmanager
def held_messages(connection: Connection) -> Iterator[tuple[Any, list[Message]]]:
    """A channel, and every message in the dead-letter queue taken on it unacknowledged,
    in queue order.

    No more than the queue held when asked: a message dead-lettered meanwhile waits for
    the next call. Those not acknowledged go back to the queue at the end.
    """
    channel: Any = connection.channel()
    try:
        queue = dead_letter_queue()(channel)
        queue.declare()  # a broker no worker has started on has none yet
        declared: Any = queue.queue_declare(passive=True)  # the stubs say str
        count = int(declared.message_count)
        messages = []
        for _ in range(count):
            message = queue.get(no_ack=False)
            if message is None:
                break
            messages.append(message)
        yield channel, messages
    finally:
        # Closing the channel hands back every delivery it has not acknowledged.
        channel.close()


def list_dead_letters(connection: Connection) -> list[DeadLetter]:
    """The messages in the dead-letter queue, oldest first; they stay there."""
    with held_messages(connection) as (_channel, messages):
        return [describe(message) for message in messages]


class ReplayError(Exception):
    """A dead letter cannot be replayed; the message says which and why."""


def replay(
    connection: Connection, settings: Settings, wanted: Callable[[DeadLetter], bool]
) -> list[DeadLetter]:
    """Publish each ``wanted`` dead letter to the queue it died in, then remove it.

    The project's publisher confirms (``confirm_publish``) make a publish return only
    once RabbitMQ holds the message; only then is the dead letter acknowledged, so a
    failure in between leaves it in the dead-letter queue (at worst, both copies).
    ReplayError, before anything is published, for a wanted one whose queue is not a
    work queue of this project.
    """
    queues = {queue.name: queue for queue in task_queues(settings)}
    with held_messages(connection) as (channel, messages):
        chosen = [(message, describe(message)) for message in messages]
        chosen = [(message, letter) for message, letter in chosen if wanted(letter)]
        for _, letter in chosen:
            if letter.queue not in queues:
                raise ReplayError(
                    f"dead letter {letter.task_id} died in {letter.queue!r}, not in a work "
                    f"queue ({', '.join(queues)}); nothing was replayed"
                )
        producer = Producer(channel)
        for message, letter in chosen:
            _republish(producer, message, queues[str(letter.queue)])
            message.ack()
        return [letter for _, letter in chosen]


def _republish(producer: Producer, message: Message, queue: Queue) -> None:
    """Publish the message's body and headers as they were, to ``queue``."""
    headers = {
        key: value
        for key, value in (message.headers or {}).items()
        if not key.startswith(DEATH_HEADERS)
    }
    kept = message.properties
    properties: dict[str, Any] = {key: kept[key] for key in KEPT_PROPERTIES if key in kept}
    producer.publish(
        message.body,
        exchange=queue.exchange,
        routing_key=queue.routing_key,
        headers=headers,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        # Declared as the workers declare it: a publish to a missing queue is dropped.
        declare=[queue],
        **properties,
    )


def purge(connection: Connection) -> int:
    """Delete every message in the dead-letter queue; how many there were."""
    channel: Any = connection.channel()
    try:
        queue = dead_letter_queue()(channel)
        queue.declare()
        return int(queue.purge() or 0)
    finally:
        channel.close()
