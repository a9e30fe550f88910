"""Worker metrics in one process: ports, recycle reasons, waits, the signal handlers and
the server, against a multiprocess folder of the test's own (tests/integration/test_metrics.py
runs them in a real prefork worker)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from billiard.pool import EX_OK, EX_RECYCLE
from celery import Task, states
from celery.exceptions import Reject
from celery.signals import (
    task_failure,
    task_postrun,
    task_prerun,
    task_rejected,
    task_retry,
    task_revoked,
    task_success,
    task_unknown,
    worker_process_shutdown,
)
from prometheus_client import CollectorRegistry
from prometheus_client import values as prometheus_values
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from {{ cookiecutter.package_name }} import (
    metrics,
)
from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
    create_app,
)
from {{ cookiecutter.package_name }}.config import (
    ConfigError,
    Profile,
    Settings,
)
from {{ cookiecutter.package_name }}.config.loader import (
    read_profile,
)
from {{ cookiecutter.package_name }}.config.settings import (
    MetricsSettings,
)
from {{ cookiecutter.package_name }}.metrics import (
    PUBLISHED_AT,
    WorkerMetrics,
    metrics_port,
    queue_wait,
    recycle_reason,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    process_data,
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """One sample's value, None when the series is absent."""
    return samples.get((name, frozenset(labels.items())))


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Multiprocess mode in a folder of this test; the process's own mode comes back after."""
    monkeypatch.setenv(metrics.MULTIPROCESS_VARIABLE, "")
    monkeypatch.setattr(prometheus_values, "ValueClass", prometheus_values.ValueClass)
    directory = tmp_path / "metrics"
    metrics.use_multiprocess_dir(directory)
    return directory


def collected(directory: Path) -> Samples:
    """What the worker's main process would serve from the folder's files."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in registry.collect()
        for sample in family.samples
    }


def test_each_queue_worker_has_its_own_port() -> None:
    assert metrics_port(9808, ("default",)) == 9808
    assert metrics_port(9808, ("cpu",)) == 9809
    assert metrics_port(9808, ("default", "cpu")) == 9808


def test_a_borrowed_metrics_folder_is_given_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(metrics.MULTIPROCESS_VARIABLE, raising=False)
    monkeypatch.setattr(prometheus_values, "ValueClass", prometheus_values.MutexValue)
    with metrics.multiprocess_dir(tmp_path / "metrics"):
        assert os.environ[metrics.MULTIPROCESS_VARIABLE] == str(tmp_path / "metrics")
        assert prometheus_values.ValueClass is not prometheus_values.MutexValue  # file-backed
    assert metrics.MULTIPROCESS_VARIABLE not in os.environ
    assert prometheus_values.ValueClass is prometheus_values.MutexValue


def test_recycles_are_told_apart_by_memory_at_exit() -> None:
    assert recycle_reason(EX_RECYCLE, rss_kib=300_000, max_memory_kib=250_000) == "max_memory"
    assert recycle_reason(EX_RECYCLE, rss_kib=100_000, max_memory_kib=250_000) == "max_tasks"
    assert recycle_reason(EX_RECYCLE, rss_kib=300_000, max_memory_kib=None) == "max_tasks"
    assert recycle_reason(EX_OK, rss_kib=300_000, max_memory_kib=250_000) is None


def test_the_wait_runs_from_publish_or_from_a_later_eta() -> None:
    now = 1_000.0
    assert queue_wait(SimpleNamespace(), now) is None
    assert queue_wait(SimpleNamespace(published_at="soon"), now) is None
    assert queue_wait(SimpleNamespace(published_at=990.0, eta=None), now) == 10.0
    eta = datetime.fromtimestamp(995.0, UTC)
    assert queue_wait(SimpleNamespace(published_at=990.0, eta=eta.isoformat()), now) == 5.0
    assert queue_wait(SimpleNamespace(published_at=990.0, eta=eta), now) == 5.0
    assert queue_wait(SimpleNamespace(published_at=1_001.0), now) == 0.0  # clock skew


def test_every_publish_carries_its_time(local_app: ProjectCelery) -> None:
    before = time.time()
    process_data.delay(ProcessDataInput(value=1, label="stamped"))
    with local_app.connection_for_read() as connection:
        queue = local_app.amqp.queues["default"](connection.default_channel)
        message = queue.get(no_ack=True)
    assert message is not None
    assert before <= float(message.headers[PUBLISHED_AT]) <= time.time()


def request_of(queue: str, **fields: Any) -> dict[str, Any]:
    """A worker's request fields for a task taken from ``queue``."""
    return {"delivery_info": {"routing_key": queue}, **fields}


def a_run(task: Task[Any, Any], state: str, retval: Any = None) -> None:
    """The signals a worker's pool process sends around one run of ``task``."""
    task_prerun.send(sender=task, task_id="unit", task=task, args=(), kwargs={})
    if state == states.SUCCESS:
        task_success.send(sender=task, result=retval)
    task_postrun.send(
        sender=task, task_id="unit", task=task, args=(), kwargs={}, retval=retval, state=state
    )


@pytest.fixture
def recording(folder: Path) -> Iterator[WorkerMetrics]:
    """A worker's metrics, recording from Celery's signals for the test."""
    worker = WorkerMetrics.create("unit@host", ("default", "cpu"), max_memory_kib=1024)
    worker.connect()
    yield worker
    worker.disconnect()


def test_runs_are_counted_by_task_queue_and_state(
    local_app: ProjectCelery, folder: Path, recording: WorkerMetrics
) -> None:
    task = local_app.tasks[process_data.name]
    retried = SimpleNamespace(**request_of("cpu"), task=task.name, id="unit", retries=1)
    revoked = SimpleNamespace(**request_of("default"))
    task.push_request(**request_of("cpu", published_at=time.time() - 2))
    try:
        task_prerun.send(sender=task, task_id="unit", task=task, args=(), kwargs={})
        busy = collected(folder)
        task_success.send(sender=task, result=None)
        task_postrun.send(
            sender=task, task_id="unit", task=task, args=(), kwargs={}, state=states.SUCCESS
        )
        task_failure.send(sender=task, task_id="unit", exception=ValueError("unit"))
        task_retry.send(sender=task, request=retried, reason="unit", einfo=None)
        task_revoked.send(sender=task, request=revoked, terminated=False, expired=False)
        a_run(task, states.REJECTED, Reject(requeue=True))
    finally:
        task.pop_request()
    message = SimpleNamespace(headers={"task": "nope"}, delivery_info={"routing_key": "cpu"})
    task_rejected.send(sender=None, message=message, exc=None)
    task_unknown.send(sender=None, message=message, exc=None, name="nope", id="unit")
    samples = collected(folder)
    name, tasks = process_data.name, "celery_tasks_total"
    assert value(busy, "celery_worker_pool_busy_processes", worker="unit@host", queue="cpu") == 1
    assert value(samples, "celery_worker_pool_busy_processes", worker="unit@host", queue="cpu") == 0
    assert value(samples, tasks, task=name, queue="cpu", state="succeeded") == 1
    assert value(samples, tasks, task=name, queue="cpu", state="failed") == 1
    assert value(samples, tasks, task=name, queue="cpu", state="retried") == 1
    assert value(samples, tasks, task=name, queue="default", state="revoked") == 1
    assert value(samples, tasks, task=name, queue="cpu", state="rejected") == 1
    assert value(samples, tasks, task="nope", queue="cpu", state="rejected") == 2
    assert value(samples, "celery_task_runtime_seconds_count", task=name, queue="cpu") == 2
    wait = value(samples, "celery_task_queue_wait_seconds_sum", task=name, queue="cpu")
    assert wait is not None
    assert 4 <= wait < 20  # two runs, each published 2 s before it started


def test_nothing_is_recorded_once_disconnected(local_app: ProjectCelery, folder: Path) -> None:
    worker = WorkerMetrics.create("unit@host", ("default",), max_memory_kib=None)
    worker.connect()
    worker.disconnect()
    task = local_app.tasks[process_data.name]
    task.push_request(**request_of("default"))
    try:
        a_run(task, states.SUCCESS)
    finally:
        task.pop_request()
    worker_process_shutdown.send(sender=None, pid=os.getpid(), exitcode=EX_RECYCLE)
    samples = collected(folder)
    ran = {"task": process_data.name, "queue": "default"}
    assert value(samples, "celery_tasks_total", **ran, state="succeeded") is None
    assert value(samples, "celery_task_runtime_seconds_count", **ran) is None
    recycled = {"worker": "unit@host", "queue": "default", "reason": "max_tasks"}
    assert value(samples, "celery_worker_process_recycles_total", **recycled) is None


def test_a_recycled_process_counts_its_reason_and_leaves_the_busy_sum(
    folder: Path, monkeypatch: pytest.MonkeyPatch, recording: WorkerMetrics
) -> None:
    recording.busy.labels("unit@host", "default").inc()
    monkeypatch.setattr(metrics, "mem_rss", lambda: 2048)
    worker_process_shutdown.send(sender=None, pid=os.getpid(), exitcode=EX_RECYCLE)
    samples = collected(folder)
    recycles = "celery_worker_process_recycles_total"
    labels = {"worker": "unit@host", "queue": "default"}
    assert value(samples, recycles, **labels, reason="max_memory") == 1
    assert value(samples, "celery_worker_pool_busy_processes", **labels) is None


def test_a_process_killed_mid_task_stops_counting_as_busy(folder: Path) -> None:
    code = "import time; print('ready', flush=True); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)  # noqa: S603
    with child:
        (folder / f"gauge_livesum_{child.pid}.db").write_bytes(b"")
        child.kill()
        child.wait(timeout=10)
    (folder / f"gauge_livesum_{os.getpid()}.db").write_bytes(b"")
    metrics.reap_dead_processes(folder)
    assert sorted(path.name for path in folder.iterdir()) == [f"gauge_livesum_{os.getpid()}.db"]


@pytest.fixture
def metrics_app(local_settings: Settings) -> ProjectCelery:
    """An app with metrics on, on a free port."""
    settings = local_settings.model_copy(
        update={"metrics": MetricsSettings(enabled=True, port=free_port())}
    )
    return create_app(settings)


def worker_of(app: ProjectCelery) -> Any:
    """What the step reads from Celery's WorkController: a worker of both queues."""
    return SimpleNamespace(app=app, hostname="unit@host", max_memory_per_child=250_000, pool=None)


def test_the_worker_serves_its_metrics_on_its_port(
    metrics_app: ProjectCelery, folder: Path
) -> None:
    worker = worker_of(metrics_app)
    step = metrics.MetricsServer(worker)
    try:
        port = metrics_app.settings.metrics.port
        url = f"http://127.0.0.1:{port}/metrics"
        before = parse(urllib.request.urlopen(url, timeout=5).read().decode())
        worker.pool = SimpleNamespace(num_processes=3)
        after = parse(urllib.request.urlopen(url, timeout=5).read().decode())
    finally:
        step.shutdown(worker)
    folder_of_worker = metrics_app.settings.data_dir / "metrics" / "unit@host"
    task = metrics_app.tasks[process_data.name]
    task.push_request(**request_of("default"))
    try:
        a_run(task, states.SUCCESS)  # after shutdown: not recorded
    finally:
        task.pop_request()
    ran = {"task": process_data.name, "queue": "default", "state": "succeeded"}
    assert value(collected(folder_of_worker), "celery_tasks_total", **ran) is None
    assert os.environ[metrics.MULTIPROCESS_VARIABLE] == str(folder_of_worker)
    for queue in ("default", "cpu"):
        labels = {"worker": "unit@host", "queue": queue}
        assert value(before, "celery_worker_up", **labels) == 1
        assert value(before, "celery_worker_pool_processes", **labels) is None  # not started
        assert value(after, "celery_worker_pool_processes", **labels) == 3
        assert value(after, "celery_worker_pool_busy_processes", **labels) == 0


def test_a_taken_metrics_port_is_one_line_naming_the_setting(
    metrics_app: ProjectCelery, folder: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", metrics_app.settings.metrics.port))
        taken.listen()
        with pytest.raises(ConfigError) as error:
            metrics.MetricsServer(worker_of(metrics_app))
    message = str(error.value)
    assert message.startswith("metrics.port (")
    assert "cannot serve metrics on 127.0.0.1:" in message
    assert "\n" not in message


def test_metrics_are_off_by_default_and_on_in_production(
    local_app: ProjectCelery, metrics_app: ProjectCelery
) -> None:
    assert not local_app.settings.metrics.enabled
    assert metrics.MetricsServer not in local_app.steps["worker"]
    assert metrics.MetricsServer in metrics_app.steps["worker"]
    assert read_profile(Profile.PRODUCTION)["metrics"]["enabled"] is True
