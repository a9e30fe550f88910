"""Redis: after a broker outage, requeue the tasks it cut off at once.

When a worker loses its broker connection it cancels its running acks-late tasks
(``worker_cancel_long_running_tasks_on_connection_loss``): it can no longer ack them,
and on RabbitMQ the broker has already requeued them. kombu's Redis transport
requeues them as it closes the lost connection, which fails while Redis is out of
reach; they would then wait in Redis' unacked hash until ``broker.visibility_timeout``
(an hour by default) runs out. kombu has no call to retry that requeue later, so
this consumer step retries it on the next connection. Each message is requeued in
one Redis transaction, and only if it is still unacked: a message acked or requeued
meanwhile (by another worker's sweep) is left alone.

Out of its reach: a task whose ``BRPOP`` reply the dropped connection lost. Redis
took it off the queue, and kombu records a message as unacked only once the reply
has arrived (``QoS.append``), so nothing is left to requeue: at most one task per
dropped connection (README, When things go wrong). Receiving with BRPOPLPUSH/BLMOVE
would close that window but takes a single source list, while a worker waits on
several (each queue and its priority lists); kombu has not changed it (requested in
celery/celery#1392; celery/kombu#1733 reads a pending reply on a clean close only).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps
from celery.worker.consumer import Consumer

logger = logging.getLogger(__name__)


class RequeueAfterReconnect(bootsteps.StartStopStep):
    """Consumer step: requeue what the previous connection left unacked."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Consumer, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.lost: list[Any] = []  # kombu Redis channels of connections that were lost

    def start(self, parent: Consumer) -> None:
        """Requeue the lost channels' unacked messages, then watch this connection's."""
        if parent.connection is None:  # the Connection step it requires sets it first
            raise RuntimeError("the consumer has no broker connection yet")
        channel = parent.connection.default_channel
        try:
            for lost in self.lost:
                requeue_unacked(lost, channel)
        except parent.connection.connection_errors:
            raise  # Redis is gone again: the consumer restarts and this runs again
        except Exception:  # never stop the worker over it: the timeout still applies
            logger.exception("could not requeue the tasks of the lost broker connection")
        self.lost = [channel]


def requeue_unacked(lost: Any, channel: Any) -> None:
    """Requeue, through the open ``channel``, what ``lost`` delivered and saw no ack for.

    kombu's QoS of a channel keeps those (``_delivered``: private, no public call lists
    them); a requeue that worked at close left none. A closed channel cannot reach
    Redis any more, so the requeue goes through the open one (same keys).
    """
    delivered = lost.qos._delivered
    for tag in list(delivered):
        channel.qos.restore_by_tag(tag)  # atomic; no-op unless still in the unacked hash
        del delivered[tag]
