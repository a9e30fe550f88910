"""The embedded default: a worker and a round trip with no server at all."""

from __future__ import annotations

import pytest
from celery.contrib.testing.worker import start_worker

from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    ProcessDataOutput,
    process_data,
)

pytestmark = pytest.mark.integration


def test_filesystem_broker_round_trip(local_app: ProjectCelery) -> None:
    with start_worker(local_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        result = process_data.delay(ProcessDataInput(value=1, label="local"))
        assert result.get(timeout=30) == ProcessDataOutput(message="Processed: 1 - local")
