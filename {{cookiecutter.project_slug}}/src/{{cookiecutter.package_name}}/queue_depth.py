"""How many messages wait in a queue, on Redis or RabbitMQ, and who holds the rest.

Both go through kombu's passive ``queue_declare``: RabbitMQ answers with the queue's
``message_count`` (and ``consumer_count``); kombu's Redis transport sums the lengths of
every list it keeps the queue in (``redis_lists``: one per priority step). Messages a
worker has already taken (prefetched, or running unacknowledged) are not counted there:
``queue_snapshots`` counts them apart on Redis, from the hash kombu keeps them in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from kombu import Connection, Queue
from kombu.transport.redis import Channel as RedisChannel
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads


def redis_lists(queue: str) -> list[str]:
    """The Redis lists kombu keeps a queue in: the queue itself, then one per priority step.

    A message published with priority 9 waits in ``f"{queue}\\x06\\x169"``; anything that
    counts a queue by list length (``LLEN``, a KEDA trigger) must add these up.
    """
    steps: list[int] = RedisChannel.priority_steps
    separator: str = RedisChannel.sep
    return [f"{queue}{separator}{step}" if step else queue for step in steps]


def queue_depth(connection: Connection, queue: str) -> int:
    """Messages waiting in ``queue``; 0 for a queue the broker does not have.

    Redis keeps no empty lists, so an empty queue is a missing one there.
    """
    return _declare_passive(connection, queue)[0]


def queue_depths(connection: Connection, queues: Iterable[str]) -> dict[str, int]:
    """Messages waiting in each of ``queues``, by name."""
    return {queue: queue_depth(connection, queue) for queue in queues}


@dataclass(frozen=True)
class QueueSnapshot:
    """One queue as the broker sees it now; a count the broker cannot tell is None."""

    queue: str
    # Waiting for a worker (Redis: every priority list summed).
    ready: int
    # Redis: taken by a worker and not acknowledged yet (prefetched or running).
    unacked: int | None
    # RabbitMQ: consumers attached to the queue (a worker's connection each).
    consumers: int | None


def queue_snapshots(connection: Connection, queues: Sequence[Queue]) -> list[QueueSnapshot]:
    """A snapshot of each of ``queues``, in their order.

    Each count is its own question to the broker: a message a worker takes between two
    of them may, for that instant, be counted twice or in neither.
    """
    driver = connection.transport.driver_type
    unacked = redis_unacked(connection, queues) if driver == "redis" else None
    snapshots = []
    for queue in queues:
        ready, consumers = _declare_passive(connection, queue.name)
        snapshots.append(
            QueueSnapshot(
                queue=queue.name,
                ready=ready,
                unacked=None if unacked is None else unacked[queue.name],
                # kombu's virtual transports (Redis, filesystem) always answer 0 here.
                consumers=consumers if driver == "amqp" else None,
            )
        )
    return snapshots


def redis_unacked(connection: Connection, queues: Sequence[Queue]) -> Counter[str]:
    """Unacknowledged messages per queue, on kombu's Redis transport.

    kombu keeps each message a worker took in one hash (the channel's ``unacked_key``),
    as ``[message, exchange, routing_key]``: when its worker dies, the message goes back
    (after the visibility timeout) to the queues kombu's ``_lookup`` finds for that
    exchange and routing key, so they are the ones counted here. Celery publishes to
    the default exchange (``""``), routing by queue name. Only ``queues`` are counted.
    """
    names = {queue.name for queue in queues}
    channel: Any = connection.default_channel
    routes: dict[tuple[str, str], list[str]] = {}
    counts: Counter[str] = Counter()
    # kombu's client adds a global_keyprefix to the commands kombu itself sends, which
    # do not include HSCAN. HSCAN, not HGETALL: the hash may be large, and Redis serves
    # other clients between pages.
    key = f"{channel.global_keyprefix}{channel.unacked_key}"
    for _tag, held in channel.client.hscan_iter(key):
        _message, exchange, routing_key = loads(bytes_to_str(held))
        if (exchange, routing_key) not in routes:
            # kombu's own routing (private, but the rule its restore follows).
            routes[exchange, routing_key] = channel._lookup(exchange, routing_key)
        counts.update(name for name in routes[exchange, routing_key] if name in names)
    return counts


def _declare_passive(connection: Connection, queue: str) -> tuple[int, int]:
    """``(message_count, consumer_count)`` of a queue; zeros for a missing one."""
    # A channel per question: RabbitMQ closes the channel that asked about a missing queue.
    channel: Any = connection.channel()
    try:
        declared = channel.queue_declare(queue=queue, passive=True)
        return int(declared.message_count), int(declared.consumer_count)
    except connection.channel_errors:
        return 0, 0
    finally:
        with suppress(*connection.channel_errors, *connection.connection_errors):
            channel.close()
