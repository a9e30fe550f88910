"""The queue exporter: each queue's depth on the broker, for Prometheus.

One per deployment (``{{ cookiecutter.project_slug }} exporter``): it asks the broker at
every scrape, so the numbers are as fresh as the scrape and nothing polls between
scrapes. A scrape the broker does not answer fails (HTTP 500) rather than report stale
numbers: Prometheus then records ``up == 0`` for the exporter.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

from .celery_app import ProjectCelery, monitored_queues
from .health import BrokerUnavailableError, answering_broker
from .queue_depth import QueueSnapshot, queue_snapshots

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)


def read_snapshots(app: ProjectCelery) -> list[QueueSnapshot]:
    """Every declared queue as the broker sees it now (see ``queue_depth``).

    Raises :class:`BrokerUnavailableError` when it does not answer within
    ``broker.connection_timeout`` seconds.
    """
    with answering_broker(app) as connection:
        return queue_snapshots(connection, monitored_queues(app.settings))


class QueueCollector(Collector):
    """Queue gauges read from the broker when Prometheus scrapes (the names are the
    contract the alert rules and dashboards use)."""

    def __init__(self, app: ProjectCelery) -> None:
        self.app = app

    def collect(self) -> Iterable[Metric]:
        """``celery_queue_depth`` always; ``_unacked`` on Redis, ``_consumers`` on RabbitMQ."""
        try:
            snapshots = read_snapshots(self.app)
        except BrokerUnavailableError as error:
            logger.error("queue metrics: %s", error)
            raise
        depth = GaugeMetricFamily(
            "celery_queue_depth",
            "Messages waiting in the queue for a worker (Redis: every priority summed).",
            labels=["queue"],
        )
        unacked = GaugeMetricFamily(
            "celery_queue_unacked",
            "Messages of the queue taken by a worker and not acknowledged yet (Redis).",
            labels=["queue"],
        )
        consumers = GaugeMetricFamily(
            "celery_queue_consumers",
            "Consumers attached to the queue (RabbitMQ).",
            labels=["queue"],
        )
        for snapshot in snapshots:
            depth.add_metric([snapshot.queue], snapshot.ready)
            if snapshot.unacked is not None:
                unacked.add_metric([snapshot.queue], snapshot.unacked)
            if snapshot.consumers is not None:
                consumers.add_metric([snapshot.queue], snapshot.consumers)
        yield depth
        # A family without samples is left out: the other broker has no such number.
        yield from (family for family in (unacked, consumers) if family.samples)


def failing_scrapes_answer_500(metrics: WSGIApplication) -> WSGIApplication:
    """``metrics`` answering HTTP 500 itself when the broker does not answer.

    Without it the error reaches wsgiref, which answers 500 too but prints the chained
    traceback (kombu's, then its own) on every scrape; the collector already logged
    the one line that says what to fix.
    """

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            return metrics(environ, start_response)
        except BrokerUnavailableError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [b"the broker did not answer: see the exporter's log\n"]

    return app


class QuietHandler(WSGIRequestHandler):
    """Requests are not logged: Prometheus scrapes every few seconds."""

    def log_message(self, format: str, *args: object) -> None:
        """Drop the access line."""


def start(app: ProjectCelery, host: str, port: int) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``/metrics`` on ``host:port`` from a daemon thread (port 0: any free one)."""
    # A registry of its own: the queue gauges only, none of the process defaults.
    registry = CollectorRegistry()
    registry.register(QueueCollector(app))
    # prometheus_client's start_http_server, with the 500 answered by the wrapper above.
    server = make_server(
        host,
        port,
        failing_scrapes_answer_500(make_wsgi_app(registry)),
        server_class=ThreadingWSGIServer,
        handler_class=QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread
