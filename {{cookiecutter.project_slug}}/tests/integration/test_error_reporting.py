"""Error reports to Sentry from a task failing on the real broker, without task data.

sentry-sdk's transport is replaced by one that keeps the envelopes: nothing leaves the
machine, and the test reads exactly what would have been sent.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sentry_sdk
from celery.contrib.testing.worker import start_worker
from pydantic import SecretStr
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from {{ cookiecutter.package_name }} import error_reporting
from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
)
from {{ cookiecutter.package_name }}.config.settings import (
    SentrySettings,
)
from {{ cookiecutter.package_name }}.tasks.notifications import (
    Notification,
    send_notification,
)

from ..conftest import RecordingGateway
from .harness import eventually

pytestmark = pytest.mark.integration

# In the task's input, so in its arguments, its frame's locals and the gateway's call.
MARKER = "private-3f9c1e-not-for-sentry"
ERROR = "partner rejected the message"


class CapturingTransport(Transport):
    """A sentry-sdk transport that keeps each envelope, serialized, instead of sending it."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[bytes] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        """Keep the envelope as the HTTP transport would send it."""
        self.envelopes.append(envelope.serialize())


@pytest.fixture(scope="module")
def transport(broker_app: ProjectCelery) -> Iterator[CapturingTransport]:
    """Error reporting on in this process, into a capturing transport."""
    captured = CapturingTransport()
    dsn = SecretStr("https://public-key@sentry.invalid/1")
    settings = broker_app.settings.model_copy(update={"sentry": SentrySettings(dsn=dsn)})
    assert error_reporting.start(settings, transport=captured)
    yield captured
    sentry_sdk.get_client().close()
    # No client at all: sentry-sdk's Celery hooks stay installed but let everything through.
    sentry_sdk.get_global_scope().set_client(None)


@pytest.fixture(scope="module")
def reporting_worker(broker_app: ProjectCelery, transport: CapturingTransport) -> Iterator[None]:
    """A worker thread started after error reporting, as a worker process starts."""
    with start_worker(
        broker_app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=15
    ):
        yield


def test_a_failing_task_is_reported_without_its_arguments(
    broker_app: ProjectCelery,
    reporting_worker: None,
    transport: CapturingTransport,
    integration_gateway: RecordingGateway,
) -> None:
    integration_gateway.calls, integration_gateway.failures = 0, 1
    integration_gateway.error = ValueError(ERROR)
    broker_app.set_current()
    result = send_notification.delay(Notification(recipient="ops", body=MARKER))
    with pytest.raises(ValueError, match=ERROR):
        result.get(timeout=20)
    sentry_sdk.flush(timeout=5)
    eventually(lambda: bool(transport.envelopes), 10, "no event reached the transport")
    sent = b"".join(transport.envelopes).decode()
    assert ERROR in sent
    assert send_notification.name in sent  # extra.celery-job.task_name
    assert MARKER not in sent
