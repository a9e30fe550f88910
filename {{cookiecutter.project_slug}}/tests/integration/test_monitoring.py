"""The shipped monitoring, end to end: a real Prometheus scrapes the queue exporter, a
worker{% if cookiecutter.include_api %} and the API{% endif %} with deploy/prometheus/prometheus.yml and evaluates alerts.yml.

Prometheus is Debian's ``prometheus`` binary, on a free loopback port with its storage
in tmp_path, killed at the end. Its configuration is the shipped one with each job's
targets replaced by the test's processes and a 1 s scrape and evaluation interval; the
rules are the shipped ones with every ``for:`` cut to seconds. Without the binary the
tests skip, saying so, except under CI=true, where they fail.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from {{ cookiecutter.package_name }}.celery_app import (
    DEFAULT_QUEUE,
    ProjectCelery,
)
{%- if cookiecutter.include_api %}
from {{ cookiecutter.package_name }}.config.settings import (
    environment_variable,
)
{%- endif %}
from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    process_data,
)

from ..monitoring import GRAFANA, PROMETHEUS, alert_rules, prometheus_tool
from .conftest import RunWorker, declare_queues
from .harness import child_environment, eventually, final_states, process_group, queued

pytestmark = pytest.mark.integration
START_TIMEOUT = 30
# Every `for:` of the rules in the test copy: long enough to see `pending` first.
SHORT_FOR = "2s"
# What the dashboard's `$__rate_interval` stands for here (Grafana fills it in).
RATE_INTERVAL = "1m"


def free_port() -> int:
    """A TCP port nothing listens on now, on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class Targets:
    """The loopback port of each scrape job's process in this module."""

    worker: int
    exporter: int
{%- if cookiecutter.include_api %}
    api: int
{%- endif %}

    def by_job(self) -> dict[str, int]:
        """Each job of prometheus.yml and its port."""
        return dict(vars(self))


@dataclass(frozen=True)
class Prometheus:
    """A running Prometheus and its HTTP API."""

    url: str

    def get(self, path: str, **params: str) -> Any:
        """The ``data`` of an API answer; fails on an error answer."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        assert self.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(self.url + path + query, timeout=10) as answer:  # noqa: S310
            body = json.loads(answer.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expression: str) -> list[dict[str, Any]]:
        """The instant vector an expression evaluates to now."""
        data = self.get("/api/v1/query", query=expression)
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    def values(self, expression: str) -> dict[str, float]:
        """The samples of an expression, by the value of their ``queue`` label."""
        return {
            series["metric"].get("queue", ""): float(series["value"][1])
            for series in self.query(expression)
        }

    def active(self, name: str, queue: str) -> bool:
        """Whether an alert is pending or firing for a queue now."""
        return any(
            alert["labels"]["alertname"] == name
            and alert["labels"].get("queue") == queue
            and alert["state"] in {"pending", "firing"}
            for alert in self.get("/api/v1/alerts")["alerts"]
        )


def scrape_config(targets: Targets, rules: Path) -> dict[str, Any]:
    """The shipped prometheus.yml with the test's targets, intervals and rules."""
    config: dict[str, Any] = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = targets.by_job()
    assert {job["job_name"] for job in config["scrape_configs"]} == set(jobs)
    config["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(rules)]
    for job in config["scrape_configs"]:
        for key in [key for key in job if key.endswith("_sd_configs")]:
            del job[key]
        job["static_configs"] = [{"targets": [f"127.0.0.1:{jobs[job['job_name']]}"]}]
    return config


def short_rules() -> dict[str, Any]:
    """The shipped alerts.yml with every ``for:`` cut to SHORT_FOR."""
    rules: dict[str, Any] = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = SHORT_FOR
    return rules


@pytest.fixture(scope="module")
def targets() -> Targets:
    """A free port for each job."""
    return Targets(
        worker=free_port(),
        exporter=free_port(),
{%- if cookiecutter.include_api %}
        api=free_port(),
{%- endif %}
    )


@pytest.fixture(scope="module")
def prometheus(targets: Targets, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """Prometheus on the shipped configuration, pointed at the test's processes."""
    binary = prometheus_tool("prometheus")
    folder = tmp_path_factory.mktemp("prometheus")
    rules = folder / "alerts.yml"
    rules.write_text(yaml.safe_dump(short_rules()))
    config = folder / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(targets, rules)))
    port = free_port()
    command = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1h",
    ]
    log = folder / "prometheus.log"
    with process_group(command, folder, child_environment(), log) as process:
        server = Prometheus(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + START_TIMEOUT
        while not answers(server):
            assert process.poll() is None, f"prometheus exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"prometheus not ready:\n{log.read_text()}"
            time.sleep(0.2)
        yield server


def answers(server: Prometheus) -> bool:
    """Whether Prometheus is ready to answer queries."""
    try:
        with urllib.request.urlopen(server.url + "/-/ready", timeout=2) as answer:  # noqa: S310
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def exporter(
    broker_app: ProjectCelery, targets: Targets, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """The queue exporter (``exporter``) on its port, as one deployment runs it."""
    folder = tmp_path_factory.mktemp("exporter")
    command = [
        sys.executable,
        "-m",
        "{{ cookiecutter.package_name }}",
        "exporter",
        "--profile=test",
        f"--port={targets.exporter}",
    ]
    log = folder / "exporter.log"
    with process_group(command, folder, child_environment(), log) as process:
        wait_for_port(targets.exporter, lambda: process.poll() is None, log)
        yield
{%- if cookiecutter.include_api %}


@pytest.fixture(scope="module")
def api(
    broker_app: ProjectCelery, targets: Targets, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The API (``api``) on its port, serving /metrics; its base URL."""
    folder = tmp_path_factory.mktemp("api")
    command = [
        sys.executable,
        "-m",
        "{{ cookiecutter.package_name }}",
        "api",
        "--profile=test",
        "--host=127.0.0.1",
        f"--port={targets.api}",
    ]
    log = folder / "api.log"
    environment = child_environment({environment_variable("metrics.enabled"): "true"})
    with process_group(command, folder, environment, log) as process:
        wait_for_port(targets.api, lambda: process.poll() is None, log)
        yield f"http://127.0.0.1:{targets.api}"
{%- endif %}


def wait_for_port(port: int, alive: Callable[[], bool], log: Path) -> None:
    """Block until something accepts connections on the port; fail with the log."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        assert alive(), f"the process exited:\n{log.read_text()}"
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert time.monotonic() < deadline, f"nothing listens on {port}:\n{log.read_text()}"
        time.sleep(0.2)


def metrics_settings(targets: Targets) -> dict[str, str]:
    """The settings that make the default queue's worker serve its metrics on the
    worker job's port (metrics.port itself: default is the first of QUEUES)."""
    return {"metrics.enabled": "true", "metrics.port": str(targets.worker)}


def backlog_threshold() -> int:
    """The depth above which CeleryQueueBacklog fires, read from alerts.yml."""
    (rule,) = [rule for rule in alert_rules() if rule["alert"] == "CeleryQueueBacklog"]
    found = re.search(r">\s*(\d+)\s*$", rule["expr"].strip())
    assert found is not None, rule["expr"]
    return int(found[1])


def of_queue(metric: str) -> str:
    """A selector of the default queue's series of a metric."""
    return metric + '{queue="' + DEFAULT_QUEUE + '"}'


def test_a_backlog_is_scraped_raises_its_alerts_and_drains(
    broker_app: ProjectCelery,
    run_worker: RunWorker,
    prometheus: Prometheus,
    exporter: None,
    targets: Targets,
) -> None:
    declare_queues(broker_app)
    count = backlog_threshold() + 5
    results = [process_data.delay(ProcessDataInput(value=n, label="backlog")) for n in range(count)]
    assert queued(broker_app) == count
    depth = of_queue("celery_queue_depth")
    eventually(
        lambda: prometheus.values(depth) == {DEFAULT_QUEUE: count},
        timeout=20,
        message=f"Prometheus never read {count} waiting: {prometheus.values(depth)}",
    )
    for alert in ("CeleryQueueBacklog", "CeleryQueueWithoutWorker"):
        eventually(
            partial(prometheus.active, alert, DEFAULT_QUEUE),
            timeout=20,
            message=f"{alert} neither pending nor firing for {DEFAULT_QUEUE}",
        )

    with run_worker(queue=DEFAULT_QUEUE, settings=metrics_settings(targets)):
        states = final_states(broker_app, [r.id for r in results], timeout=60)
        assert set(states.values()) == {"SUCCESS"}
        eventually(
            lambda: prometheus.values(depth) == {DEFAULT_QUEUE: 0},
            timeout=20,
            message=f"the drained depth never read 0: {prometheus.values(depth)}",
        )
        up = f"sum by (queue) ({of_queue('celery_worker_up')})"
        eventually(
            lambda: prometheus.values(up) == {DEFAULT_QUEUE: 1},
            timeout=20,
            message=f"celery_worker_up never read 1: {prometheus.values(up)}",
        )
        eventually(
            lambda: not prometheus.active("CeleryQueueWithoutWorker", DEFAULT_QUEUE),
            timeout=20,
            message="CeleryQueueWithoutWorker still active with a worker consuming",
        )


def panel_queries() -> list[tuple[str, str]]:
    """Every query of the dashboard as (panel title, PromQL), Grafana's variables filled in."""
    dashboard = json.loads((GRAFANA / "dashboards" / "celery.json").read_text())
    return [
        (panel["title"], target["expr"].replace("$__rate_interval", RATE_INTERVAL))
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def test_every_dashboard_query_returns_data(
    broker_app: ProjectCelery,
    run_worker: RunWorker,
    prometheus: Prometheus,
    exporter: None,
    targets: Targets,
{%- if cookiecutter.include_api %}
    api: str,
{%- endif %}
) -> None:
    # One task per pool process then a new process: the replacements panel has data.
    settings = metrics_settings(targets) | {"worker.max_tasks_per_child": "1"}
    with run_worker(queue=DEFAULT_QUEUE, settings=settings):
        results = [process_data.delay(ProcessDataInput(value=n, label="traffic")) for n in range(6)]
        # Invalid input, as a producer on another release could send it: a failed run.
        failed = broker_app.send_task(
            process_data.name, args=[{"value": "not a number", "label": "x"}]
        )
        states = final_states(broker_app, [r.id for r in [*results, failed]], timeout=60)
        assert states[failed.id] == "FAILURE"
{%- if cookiecutter.include_api %}
        for _ in range(5):
            with urllib.request.urlopen(api + "/healthz", timeout=10) as answer:  # noqa: S310
                assert answer.status == 200
{%- endif %}
        # A rate() needs two scrapes after the traffic: a few seconds.
        eventually(
            lambda: not empty_panels(prometheus),
            timeout=20,
            message=f"panels without data: {empty_panels(prometheus)}",
        )


def empty_panels(prometheus: Prometheus) -> list[str]:
    """The dashboard's queries that return nothing now, with their panel's title."""
    return [
        f"{title}: {expression}"
        for title, expression in panel_queries()
        if not prometheus.query(expression)
    ]
