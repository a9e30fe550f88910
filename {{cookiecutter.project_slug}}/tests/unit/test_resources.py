"""Resources: the file ledger and the per-process provider."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from celery import Celery

from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
    current_resources,
)
from {{ cookiecutter.package_name }}.config import (
    Settings,
)
from {{ cookiecutter.package_name }}.resources import (
    DirectoryLedger,
    LoggingGateway,
    RedisLedger,
    ResourceProvider,
    build_resources,
)


def test_directory_ledger_records_each_key_once(tmp_path: Path) -> None:
    ledger = DirectoryLedger(tmp_path)
    assert ledger.record_once("k1", {"n": 1})
    assert not ledger.record_once("k1", {"n": 2})
    assert ledger.record_once("k2", {"n": 3})
    assert sorted(entry["n"] for entry in ledger.entries()) == [1, 3]


def test_provider_builds_once_per_process(
    local_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[int] = []

    def factory(settings: Settings) -> object:
        built.append(os.getpid())
        return build_resources(settings)

    provider = ResourceProvider(local_settings, factory)  # type: ignore[arg-type]
    first = provider.get()
    assert provider.get() is first
    monkeypatch.setattr(os, "getpid", lambda: -1)  # as if forked into a child
    assert provider.get() is not first
    assert len(built) == 2


def test_local_resources_use_files(local_settings: Settings) -> None:
    resources = build_resources(local_settings)
    assert isinstance(resources.ledger, DirectoryLedger)
    assert isinstance(resources.gateway, LoggingGateway)
    resources.gateway.deliver("ops", "hello")


def test_redis_results_get_a_redis_ledger(local_settings: Settings) -> None:
    settings = local_settings.model_copy(
        update={"results": local_settings.results.model_copy(update={"url": "redis://cache:1/1"})}
    )
    assert isinstance(build_resources(settings).ledger, RedisLedger)


def test_current_resources_come_from_the_current_app(local_app: ProjectCelery) -> None:
    assert current_resources().settings is local_app.settings


def test_current_resources_need_an_app_from_create_app(local_app: ProjectCelery) -> None:
    Celery("plain").set_current()
    with pytest.raises(RuntimeError, match="call create_app"):
        current_resources()
