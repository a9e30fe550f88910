"""HTTP -> real broker -> real worker -> result, through the API."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.api import (
    create_api,
)
from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
)

from ..conftest import RecordingGateway

pytestmark = pytest.mark.integration


@pytest.fixture
def client(worker_app: ProjectCelery) -> TestClient:
    """The API over the app the test worker consumes for."""
    return TestClient(create_api(worker_app.settings, worker_app))


def wait_until_done(client: TestClient, status_url: str, timeout: float = 30) -> dict[str, Any]:
    """Poll a task's status until it succeeds or fails."""
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = client.get(status_url).json()
        if status["state"] in {"SUCCESS", "FAILURE"} or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def test_process_data_over_http(client: TestClient) -> None:
    accepted = client.post("/tasks/process_data", json={"value": 5, "label": "five"})
    assert accepted.status_code == 202
    status = wait_until_done(client, accepted.headers["location"])
    assert status["state"] == "SUCCESS"
    assert status["result"] == {"message": "Processed: 5 - five"}


def test_a_failing_task_reports_its_error(
    client: TestClient, integration_gateway: RecordingGateway
) -> None:
    integration_gateway.calls, integration_gateway.failures = 0, 1
    integration_gateway.error = ValueError("partner rejected the message")
    accepted = client.post("/tasks/send_notification", json={"recipient": "ops", "body": "x"})
    status = wait_until_done(client, accepted.json()["status_url"])
    assert status["state"] == "FAILURE"
    assert status["error"]["type"] == "ValueError"
    assert status["error"]["message"] == "partner rejected the message"


def test_an_invalid_body_is_422_naming_the_field(client: TestClient) -> None:
    response = client.post("/tasks/process_data", json={"value": 1})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "label"]
