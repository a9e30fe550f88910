"""The autoscaler's settings, its switch in the worker command, its looks on the embedded broker."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import psutil
import pytest
from celery.utils.imports import symbol_by_name
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.autoscale import (
    QueueAutoscaler,
    autoscale_argv,
)
from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
    celery_config,
)
from {{ cookiecutter.package_name }}.cli import (
    app,
)
from {{ cookiecutter.package_name }}.config import (
    ConfigError,
    Settings,
    load_settings,
)
from {{ cookiecutter.package_name }}.config.settings import (
    ENV_PREFIX,
)
from {{ cookiecutter.package_name }}.queue_depth import (
    queue_depths,
    redis_lists,
)

GIB = 1024**3


class FakePool:
    """Stands in for the prefork pool: counts processes, stops only idle ones."""

    def __init__(self, processes: int, busy: int = 0) -> None:
        self.num_processes = processes
        self.busy = busy

    def grow(self, n: int) -> None:
        self.num_processes += n

    def shrink(self, n: int) -> None:
        idle = self.num_processes - self.busy
        self.num_processes -= min(n, idle)
        if n > idle:
            raise ValueError("Can't shrink pool. All processes busy!")

    def maintain_pool(self) -> None:
        pass


def machine(monkeypatch: pytest.MonkeyPatch, cpu_percent: float, free_bytes: int) -> None:
    """Make psutil report this CPU load and free memory."""
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval: cpu_percent)
    memory = SimpleNamespace(available=free_bytes)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: memory)


def scaler(local_app: ProjectCelery, pool: FakePool) -> QueueAutoscaler:
    """An autoscaler between 1 and 4 processes, on its first look (no cool-down yet)."""
    return QueueAutoscaler(pool, 4, 1, worker=SimpleNamespace(app=local_app))


def publish(app: ProjectCelery, count: int, **options: Any) -> None:
    """Queue messages on the embedded broker (nobody consumes them)."""
    for _ in range(count):
        app.send_task("nothing.here", queue="default", **options)


def test_min_above_max_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}AUTOSCALE__MIN_PROCESSES", "6")
    with pytest.raises(ConfigError) as caught:
        load_settings("local", env_file=None)
    assert str(caught.value) == (
        f"autoscale ({ENV_PREFIX}AUTOSCALE__*, from environment): min_processes (6) must "
        "not exceed max_processes (4); raise max_processes or lower min_processes"
    )


def test_cpu_thresholds_must_leave_a_band(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}AUTOSCALE__CPU_GROW_BELOW", "0.95")
    with pytest.raises(ConfigError, match=r"cpu_grow_below \(0.95\) must not exceed"):
        load_settings("local", env_file=None)


def test_the_worker_autoscales_only_when_enabled(
    monkeypatch: pytest.MonkeyPatch, local_settings: Settings
) -> None:
    assert autoscale_argv(local_settings) == []
    started: list[list[str]] = []
    monkeypatch.setattr(ProjectCelery, "worker_main", lambda self, argv: started.append(argv))
    monkeypatch.setenv(f"{ENV_PREFIX}AUTOSCALE__ENABLED", "true")
    monkeypatch.setenv(f"{ENV_PREFIX}AUTOSCALE__MAX_PROCESSES", "8")
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 0, result.output
    assert "--autoscale=8,1" in started[0]


def test_celery_uses_this_autoscaler(local_settings: Settings) -> None:
    assert symbol_by_name(celery_config(local_settings)["worker_autoscaler"]) is QueueAutoscaler


def test_priority_lists_follow_kombu() -> None:
    assert redis_lists("default") == [
        "default",
        "default\x06\x163",
        "default\x06\x166",
        "default\x06\x169",
    ]


def test_queue_depths_count_waiting_messages(local_app: ProjectCelery) -> None:
    publish(local_app, 2)
    with local_app.connection_for_read() as connection:
        assert queue_depths(connection, ["default", "cpu", "missing"]) == {
            "default": 2,
            "cpu": 0,
            "missing": 0,
        }


def test_a_backlog_grows_the_pool_within_free_memory(
    monkeypatch: pytest.MonkeyPatch, local_app: ProjectCelery
) -> None:
    machine(monkeypatch, cpu_percent=10, free_bytes=GIB)  # room for 2 guards of 500 MiB
    pool = FakePool(1)
    publish(local_app, 5)
    scaler(local_app, pool).maybe_scale()
    assert pool.num_processes == 3


def test_busy_cpu_shrinks_despite_a_backlog(
    monkeypatch: pytest.MonkeyPatch, local_app: ProjectCelery
) -> None:
    machine(monkeypatch, cpu_percent=99, free_bytes=64 * GIB)
    pool = FakePool(3)
    publish(local_app, 5)
    scaler(local_app, pool).maybe_scale()
    assert pool.num_processes == 2


def test_an_idle_pool_shrinks_to_the_minimum(
    monkeypatch: pytest.MonkeyPatch, local_app: ProjectCelery
) -> None:
    machine(monkeypatch, cpu_percent=10, free_bytes=64 * GIB)
    pool = FakePool(4)
    scaler(local_app, pool).maybe_scale()
    assert pool.num_processes == 1


def test_it_looks_once_per_interval(
    monkeypatch: pytest.MonkeyPatch, local_app: ProjectCelery
) -> None:
    """Celery calls it on every task message; the broker is asked once per interval."""
    machine(monkeypatch, cpu_percent=10, free_bytes=64 * GIB)
    pool = FakePool(1)
    autoscaler = scaler(local_app, pool)
    autoscaler.maybe_scale()
    publish(local_app, 3)
    autoscaler.maybe_scale()
    assert pool.num_processes == 1


def test_a_broker_out_of_reach_skips_the_look(
    monkeypatch: pytest.MonkeyPatch, local_app: ProjectCelery, caplog: pytest.LogCaptureFixture
) -> None:
    """The consumer reconnects on its own; the autoscaler keeps the size and tries again."""
    machine(monkeypatch, cpu_percent=10, free_bytes=64 * GIB)

    def away(*_: object) -> dict[str, int]:
        raise OSError("connection refused")

    monkeypatch.setattr("{{ cookiecutter.package_name }}.autoscale.queue_depths", away)
    pool = FakePool(4)
    scaler(local_app, pool).maybe_scale()
    assert pool.num_processes == 4
    assert "autoscale: cannot read the queue depths: OSError('connection refused')" in caplog.text


def test_a_pool_with_every_process_busy_shrinks_later(
    monkeypatch: pytest.MonkeyPatch, local_app: ProjectCelery, caplog: pytest.LogCaptureFixture
) -> None:
    """Only idle processes stop; no change is logged (or cooled down) when none could."""
    caplog.set_level("INFO")
    machine(monkeypatch, cpu_percent=99, free_bytes=64 * GIB)
    pool = FakePool(3, busy=3)
    scaler(local_app, pool).maybe_scale()
    assert pool.num_processes == 3
    assert "autoscale:" not in caplog.text
