"""A prefork worker's /metrics on the real broker: what ran, summed over its pool processes.

One worker for the module (``python -m {{ cookiecutter.package_name }} worker``, concurrency 2) with
both recycling guards tight: ``max_tasks_per_child=1`` replaces a pool process after
every task, so each run happens in a process of its own and the counts must add up
across processes that have exited; a task that leaks past ``max_memory_per_child``
is replaced for its memory instead.
"""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from celery.exceptions import TaskRevokedError
from prometheus_client.parser import text_string_to_metric_families

from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
)

from .conftest import delete_queues
from .harness import FAULT_TASKS, WorkerProcess, eventually, send, unique, worker_process

pytestmark = pytest.mark.integration
TIMEOUT = 30
# The fault tests' leak limits: a fresh pool process stays below, one that leaked is above.
MAX_MEMORY_KIB, LEAK_MIB = 250_000, 256

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    """A port nothing listens on now (brokers' test runs may overlap on this machine)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class MetricsWorker:
    """The module's worker and its metrics endpoint."""

    def __init__(self, worker: WorkerProcess, port: int) -> None:
        self.worker = worker
        self.url = f"http://127.0.0.1:{port}/metrics"

    def scrape(self) -> Samples:
        """Every sample the worker serves now, by name and labels."""
        with urllib.request.urlopen(self.url, timeout=5) as response:  # noqa: S310 - loopback
            text = response.read().decode()
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def settled(self) -> bool:
        """Every run so far has recycled its process (max_tasks_per_child=1): a process
        counts its recycle as it exits, just after its task's result is out."""
        samples = self.scrape()

        def total(name: str) -> float:
            return sum(value for (found, _), value in samples.items() if found == name)

        runs = total("celery_task_runtime_seconds_count")
        return total("celery_worker_process_recycles_total") == runs

    def value(self, name: str, **labels: str) -> float:
        """One series' value now (0 when absent)."""
        return self.scrape().get((name, frozenset(labels.items())), 0.0)


def forget_unacked(app: ProjectCelery) -> None:
    """Redis: drop what workers of earlier tests left unacknowledged (kombu's unacked
    hash): kombu would put it back into these queues mid-test, and its runs would count."""
    if not app.settings.broker.is_redis:
        return
    with app.connection_for_write() as connection:
        channel: Any = connection.default_channel
        channel.client.delete(channel.unacked_key, channel.unacked_index_key)


@pytest.fixture(scope="module")
def metrics_worker(
    broker_app: ProjectCelery, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MetricsWorker]:
    """A prefork worker of every queue, metrics on, both recycling guards tight."""
    forget_unacked(broker_app)
    delete_queues(broker_app)
    broker_app.set_current()
    port = free_port()
    settings = {
        "metrics.enabled": "true",
        "metrics.port": str(port),
        "worker.max_tasks_per_child": "1",
        "worker.max_memory_per_child": str(MAX_MEMORY_KIB),
    }
    folder = tmp_path_factory.mktemp("metrics")
    with worker_process(broker_app, folder, concurrency=2, settings=settings) as worker:
        yield MetricsWorker(worker, port)
    delete_queues(broker_app)


def fault_task(name: str) -> str:
    """The full name of a task of ``fault_tasks``."""
    return f"{FAULT_TASKS}.{name}"


def test_busy_processes_are_those_running_a_task(
    broker_app: ProjectCelery, metrics_worker: MetricsWorker
) -> None:
    node = metrics_worker.worker.node
    # First in the module: both pool processes are idle, none being replaced after a recycle.
    worker = psutil.Process(metrics_worker.worker.process.pid)
    eventually(lambda: len(worker.children()) == 2, 10, "two pool processes")
    running = [send(broker_app, "work_then_apply", {"key": unique("busy"), "seconds": 2})]
    running.append(send(broker_app, "work_then_apply", {"key": unique("busy"), "seconds": 2}))

    def busy() -> float:
        return metrics_worker.value(
            "celery_worker_pool_busy_processes", worker=node, queue="default"
        )

    eventually(lambda: busy() == 2, 10, "two busy pool processes")
    for result in running:
        result.get(timeout=TIMEOUT)
    eventually(lambda: busy() == 0, 10, "no busy pool process")


def test_counts_by_state_add_up_over_every_pool_process(
    broker_app: ProjectCelery, metrics_worker: MetricsWorker
) -> None:
    node = metrics_worker.worker.node
    eventually(metrics_worker.settled, 15, "the earlier tests' recycles")
    before = metrics_worker.scrape()  # the module's earlier tests ran tasks too
    done = [send(broker_app, "work_then_apply", {"key": unique("ok")}) for _ in range(4)]
    invalid = [send(broker_app, "work_then_apply", {"seconds": 0}) for _ in range(2)]
    flaky = send(broker_app, "flaky", {"key": unique("flaky"), "failures": 1})
    leak = send(broker_app, "leak", {"megabytes": LEAK_MIB})
    revoked_id = unique("revoked")
    assert broker_app.control.revoke(revoked_id, destination=[node], reply=True, timeout=5)
    revoked = broker_app.send_task(fault_task("work_then_apply"), args=[{}], task_id=revoked_id)
    broker_app.send_task(fault_task("no_such_task"), args=[{}])

    pids = {result.get(timeout=TIMEOUT)["pid"] for result in done}
    for result in invalid:
        assert result.get(timeout=TIMEOUT, propagate=False).__class__.__name__ == "TaskInputError"
    assert flaky.get(timeout=TIMEOUT)["applied"]
    leaked: dict[str, Any] = leak.get(timeout=TIMEOUT)
    with pytest.raises(TaskRevokedError):
        revoked.get(timeout=TIMEOUT)
    assert len(pids) == 4  # one process per run: max_tasks_per_child=1
    assert leaked["rss_kib_after"] > MAX_MEMORY_KIB > leaked["rss_kib_before"]

    runs = 4 + 2 + 2 + 1  # the flaky task ran twice
    recycles = "celery_worker_process_recycles_total"

    def recycled(reason: str) -> float:
        labels = frozenset({"worker": node, "queue": "default", "reason": reason}.items())
        now = metrics_worker.value(recycles, **dict(labels))
        return now - before.get((recycles, labels), 0.0)

    # A pool process counts its recycle as it exits, just after its task's result.
    eventually(
        lambda: recycled("max_tasks") + recycled("max_memory") >= runs,
        15,
        f"fewer than {runs} recycles: {metrics_worker.scrape()}",
    )
    assert recycled("max_memory") == 1
    assert recycled("max_tasks") == runs - 1

    samples = metrics_worker.scrape()

    def sample(name: str, **labels: str) -> float:
        """The series' change during this test."""
        key = (name, frozenset(labels.items()))
        return samples.get(key, 0.0) - before.get(key, 0.0)

    def total(name: str) -> float:
        """The change of every series of ``name`` during this test."""
        now = sum(value for (found, _), value in samples.items() if found == name)
        return now - sum(value for (found, _), value in before.items() if found == name)

    tasks, default = "celery_tasks_total", "default"
    work, flaky_name = fault_task("work_then_apply"), fault_task("flaky")
    assert sample(tasks, task=work, queue=default, state="succeeded") == 4
    assert sample(tasks, task=work, queue=default, state="failed") == 2
    assert sample(tasks, task=work, queue=default, state="revoked") == 1
    assert sample(tasks, task=flaky_name, queue=default, state="retried") == 1
    assert sample(tasks, task=flaky_name, queue=default, state="succeeded") == 1
    assert sample(tasks, task=fault_task("leak"), queue=default, state="succeeded") == 1
    assert sample(tasks, task=fault_task("no_such_task"), queue=default, state="rejected") == 1
    assert total(tasks) == runs + 2  # every run, the revoked task and the unknown one
    assert total("celery_task_runtime_seconds_count") == runs
    assert total("celery_task_queue_wait_seconds_count") == runs
    for queue in ("default", "cpu"):
        labels = frozenset({"worker": node, "queue": queue}.items())
        assert samples[("celery_worker_up", labels)] == 1
        assert samples[("celery_worker_pool_processes", labels)] == 2
        assert samples[("celery_worker_pool_busy_processes", labels)] == 0


def test_a_second_worker_on_the_same_port_exits_naming_the_setting(
    broker_app: ProjectCelery, metrics_worker: MetricsWorker, tmp_path: Path
) -> None:
    port = metrics_worker.url.split(":")[2].split("/")[0]
    settings = {"metrics.enabled": "true", "metrics.port": port}
    with worker_process(broker_app, tmp_path, settings=settings, ready=False) as second:
        code = second.wait(timeout=TIMEOUT)
        output = second.output()
    assert code == 2
    assert "error: metrics.port (" in output
    assert f"cannot serve metrics on 127.0.0.1:{port}" in output
    assert "Traceback" not in output
    # The first worker keeps serving.
    assert metrics_worker.value("celery_worker_up", worker=metrics_worker.worker.node, queue="cpu")
