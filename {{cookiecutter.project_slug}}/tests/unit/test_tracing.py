"""Which settings a worker's pool processes trace with: the last app's, and none once
an app turns tracing off (tests/integration/test_tracing.py follows real traces)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery.signals import worker_process_init

from {{ cookiecutter.package_name }} import tracing
from {{ cookiecutter.package_name }}.config import (
    Settings,
)
from {{ cookiecutter.package_name }}.config.settings import (
    TracingSettings,
)


@pytest.fixture
def stopped() -> Iterator[None]:
    """Tracing off in this process before and after the test."""
    tracing.stop()
    yield
    tracing.stop()


def traced(settings: Settings, name: str) -> Settings:
    """``settings`` with tracing on, to a collector that is not there."""
    on = TracingSettings(enabled=True, service_name=name, endpoint="http://127.0.0.1:9/v1")
    return settings.model_copy(update={"tracing": on})


@pytest.mark.usefixtures("stopped")
def test_a_pool_process_traces_with_the_last_apps_settings(local_settings: Settings) -> None:
    tracing.connect_signals(traced(local_settings, "first"))
    tracing.connect_signals(traced(local_settings, "second"))
    worker_process_init.send(sender=None)
    assert tracing._provider is not None
    assert tracing._provider.resource.attributes["service.name"] == "second"


@pytest.mark.usefixtures("stopped")
def test_an_app_with_tracing_off_drops_the_earlier_apps_receivers(
    local_settings: Settings,
) -> None:
    tracing.connect_signals(traced(local_settings, "first"))
    tracing.connect_signals(local_settings)  # the local profile: tracing off
    worker_process_init.send(sender=None)
    assert tracing._provider is None
