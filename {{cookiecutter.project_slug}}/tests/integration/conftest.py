"""A real worker on the broker of the ``test`` profile.

Under ``CI=true`` a missing broker fails the run; elsewhere the tests skip and say why.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path

import pytest
from celery.backends.redis import RedisBackend
from celery.contrib.testing.worker import start_worker

from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
    create_app,
    dead_letter_queue,
)
from {{ cookiecutter.package_name }}.config import (
    Settings,
    load_settings,
)
from {{ cookiecutter.package_name }}.health import (
    dependency_checks,
)
from {{ cookiecutter.package_name }}.resources import (
    ResourceProvider,
    Resources,
    build_resources,
)

from ..conftest import RecordingGateway
from .harness import WorkerProcess, worker_process


def require_services(app: ProjectCelery) -> None:
    """Fail under CI, skip elsewhere, when the broker or result store does not answer."""
    down = {name: state for name, state in dependency_checks(app, 3).items() if state != "ok"}
    if down:
        reason = f"test-profile services unreachable ({app.settings.broker.url}): {down}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI=true requires them")
        pytest.skip(f"{reason}; start them or see README (CI=true makes this a failure)")


@pytest.fixture(scope="session")
def test_settings() -> Settings:
    """The test profile, ignoring any .env file."""
    return load_settings("test", env_file=None)


@pytest.fixture(scope="session")
def integration_gateway() -> RecordingGateway:
    """The gateway the worker's tasks use; tests arrange its failures."""
    return RecordingGateway()


@pytest.fixture(scope="session")
def broker_app(
    test_settings: Settings, integration_gateway: RecordingGateway
) -> Iterator[ProjectCelery]:
    """An app on the real broker, its queues purged before and after the session."""

    def resources(settings: Settings) -> Resources:
        real = build_resources(settings)
        return Resources(settings=settings, ledger=real.ledger, gateway=integration_gateway)

    app = create_app(test_settings, ResourceProvider(test_settings, resources))
    require_services(app)
    delete_queues(app)
    yield app
    delete_queues(app)
    close_result_subscriptions()


def delete_queues(app: ProjectCelery) -> None:
    """Delete the work and dead-letter queues with their messages; they are declared
    again, as configured, by the next worker or publish."""
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for queue in [*app.amqp.queues.values(), dead_letter_queue()]:
            bound = queue(channel)
            if app.settings.broker.is_redis:
                # kombu's Redis transport deletes only the queues this connection
                # declared itself; purging empties the lists whoever filled them.
                bound.purge()
            bound.delete()


def declare_queues(app: ProjectCelery) -> None:
    """Declare the work queues again after ``delete_queues``, as production has them.

    A publisher declares a queue once per connection and remembers it: without a
    worker to declare it, a publish after the deletion would go nowhere.
    """
    with app.connection_for_write() as connection:
        for queue in app.amqp.queues.values():
            queue(connection.default_channel).declare()


def close_result_subscriptions() -> None:
    """Close the pub/sub connections of Celery's Redis result backends.

    Celery keeps one result backend per thread (the worker's pool threads too) and an
    AsyncResult unsubscribes when it is garbage-collected, reopening the connection if
    needed; nothing closes it at exit, so a strict run would end on an unclosed-socket
    warning. Collect the results now, then close and drop each connection (Celery has
    no public call for this).
    """
    gc.collect()
    for backend in [obj for obj in gc.get_objects() if isinstance(obj, RedisBackend)]:
        consumer = backend.result_consumer  # type: ignore[attr-defined]  # not in the stubs
        consumer.stop()
        consumer._pubsub = None


@pytest.fixture(scope="module")
def broker_worker(broker_app: ProjectCelery) -> Iterator[None]:
    """A worker thread consuming every queue of the test profile.

    Module-scoped: it must be gone before the fault tests start their own workers.
    """
    with start_worker(
        broker_app, pool="threads", concurrency=4, perform_ping_check=False, shutdown_timeout=15
    ):
        yield


@pytest.fixture
def worker_app(broker_app: ProjectCelery, broker_worker: None) -> ProjectCelery:
    """The app, made current so task proxies publish through it."""
    broker_app.set_current()
    return broker_app


RunWorker = Callable[..., AbstractContextManager[WorkerProcess]]


@pytest.fixture
def run_worker(broker_app: ProjectCelery, tmp_path: Path) -> Iterator[RunWorker]:
    """Start worker processes (see ``harness.worker_process``) on emptied queues."""
    delete_queues(broker_app)
    broker_app.set_current()
    broker_app.set_default()  # for task proxies called from other threads
    yield partial(worker_process, broker_app, tmp_path)
    delete_queues(broker_app)
