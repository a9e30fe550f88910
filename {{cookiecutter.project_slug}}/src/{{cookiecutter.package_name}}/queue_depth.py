"""How many messages wait in a queue, on Redis or RabbitMQ.

Both go through kombu's passive ``queue_declare``: RabbitMQ answers with the queue's
``message_count``; kombu's Redis transport sums the lengths of every list it keeps the
queue in (``redis_lists``: one per priority step). Messages a worker has already
taken (prefetched, or running unacknowledged) are not counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress
from typing import Any

from kombu import Connection
from kombu.transport.redis import Channel as RedisChannel


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
    # A channel per question: RabbitMQ closes the channel that asked about a missing queue.
    channel: Any = connection.channel()
    try:
        return int(channel.queue_declare(queue=queue, passive=True).message_count)
    except connection.channel_errors:
        return 0
    finally:
        with suppress(*connection.channel_errors, *connection.connection_errors):
            channel.close()


def queue_depths(connection: Connection, queues: Iterable[str]) -> dict[str, int]:
    """Messages waiting in each of ``queues``, by name."""
    return {queue: queue_depth(connection, queue) for queue in queues}
