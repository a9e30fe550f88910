"""The HTTP front door."""

from __future__ import annotations

from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.api import (
    create_api,
)
from {{ cookiecutter.package_name }}.config import (
    Settings,
)


def test_healthz_answers_without_the_broker(local_settings: Settings) -> None:
    client = TestClient(create_api(local_settings))
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
