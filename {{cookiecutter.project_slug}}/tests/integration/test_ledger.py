"""The Redis ledger on the test profile's Redis: once per key, a bounded journal."""

from __future__ import annotations

import uuid

import pytest

from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
)
from {{ cookiecutter.package_name }}.resources import (
    RedisLedger,
    results_redis,
)

pytestmark = pytest.mark.integration


def test_each_key_is_recorded_once_and_the_journal_keeps_the_newest(
    broker_app: ProjectCelery,  # the services are up (or the test says why not)
) -> None:
    namespace = f"test-ledger-{uuid.uuid4()}"
    with results_redis(broker_app.settings) as client:
        ledger = RedisLedger(client, namespace, key_ttl=60, journal_size=3)
        try:
            stored = [ledger.record_once(f"k{n}", {"n": n}) for n in range(5)]
            assert stored == [True] * 5
            assert ledger.record_once("k4", {"n": 99}) is False
            assert [entry["n"] for entry in ledger.entries()] == [2, 3, 4]
        finally:
            client.delete(*client.keys(f"{namespace}:*"))
