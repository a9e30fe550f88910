"""``queues``, ``exporter`` and ``dead-letters`` without a server: the embedded broker,
and brokers that do not answer. tests/integration/test_queue_monitoring.py counts on
the real broker."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.celery_app import (
    CPU_QUEUE,
    ProjectCelery,
    create_app,
)
from {{ cookiecutter.package_name }}.cli import (
    app,
)
from {{ cookiecutter.package_name }}.config import (
    load_settings,
)
from {{ cookiecutter.package_name }}.config.settings import (
    environment_variable,
)
from {{ cookiecutter.package_name }}.exporter import (
    start,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    process_data,
)

runner = CliRunner()


def invoke(*args: str) -> Any:
    """Run the CLI in-process."""
    return runner.invoke(app, list(args))


@contextmanager
def serving(celery: ProjectCelery) -> Iterator[str]:
    """The exporter on a free loopback port; its /metrics URL."""
    server, thread = start(celery, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.server_port}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def scrape(url: str) -> dict[str, dict[str, float]]:
    """``{metric: {queue: value}}`` from one scrape."""
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback URL
        text = response.read().decode()
    return {
        family.name: {sample.labels["queue"]: sample.value for sample in family.samples}
        for family in text_string_to_metric_families(text)
    }


def test_the_exporter_reads_the_broker_at_each_scrape(local_app: ProjectCelery) -> None:
    process_data.delay(ProcessDataInput(value=1, label="a"))
    with serving(local_app) as url:
        # The embedded broker knows neither unacked messages nor consumers.
        assert scrape(url) == {"celery_queue_depth": {"default": 1, CPU_QUEUE: 0}}
        process_data.delay(ProcessDataInput(value=2, label="b"))
        assert scrape(url)["celery_queue_depth"]["default"] == 2


def test_queues_lists_each_queue_from_the_broker() -> None:
    assert invoke("submit", "process_data", "--json", '{"value": 1, "label": "a"}').exit_code == 0
    listed = invoke("queues", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == [
        {"queue": "default", "ready": 1, "unacked": None, "consumers": None},
        {"queue": CPU_QUEUE, "ready": 0, "unacked": None, "consumers": None},
    ]
    table = invoke("queues")
    assert table.stdout.splitlines() == ["queue    ready", "default  1", "cpu      0"]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_an_unreachable_broker_is_one_line_naming_the_url_and_the_setting(
    monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    url = f"{scheme}://127.0.0.1:{closed_port()}/0"
    monkeypatch.setenv(environment_variable("broker.url"), url)
    monkeypatch.setenv(environment_variable("broker.username"), "app")
    monkeypatch.setenv(environment_variable("broker.password"), "s3cret-word")
    monkeypatch.setenv(environment_variable("broker.connection_timeout"), "2")
    started = time.monotonic()
    result = invoke("queues")
    assert result.exit_code == 2
    assert time.monotonic() - started < 10
    [line] = result.output.splitlines()
    assert line.startswith(
        f"error: broker.url ({environment_variable('broker.url')}, from environment): "
        f"the broker at {scheme}://app:**@127.0.0.1:"
    )
    assert "did not answer within 2s" in line
    assert "s3cret-word" not in line


def test_a_scrape_the_broker_does_not_answer_fails_with_one_line_and_no_traceback(
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"redis://127.0.0.1:{closed_port()}/0"
    monkeypatch.setenv(environment_variable("broker.url"), url)
    monkeypatch.setenv(environment_variable("broker.password"), "s3cret-word")
    monkeypatch.setenv(environment_variable("broker.connection_timeout"), "2")
    celery = create_app(load_settings())
    with serving(celery) as metrics, pytest.raises(urllib.error.HTTPError) as failed:
        scrape(metrics)
    failed.value.close()
    # Prometheus records up == 0 for a scrape that is not a 200.
    assert failed.value.code == 500
    [line] = [r.getMessage() for r in caplog.records if r.name.endswith(".exporter")]
    assert "broker.url" in line
    assert "127.0.0.1:" + url.rsplit(":", 1)[1].split("/")[0] in line
    assert "s3cret-word" not in line
    assert "Traceback" not in capfd.readouterr().err + caplog.text


def test_the_exporter_says_which_port_it_cannot_listen_on() -> None:
    with closing(socket.socket()) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("exporter", "--port", str(port))
    assert result.exit_code == 2
    assert result.output.strip().startswith(f"error: cannot listen on 127.0.0.1:{port} (")
    assert result.output.strip().endswith("; free the port or set exporter.port")
{%- if cookiecutter.broker == "rabbitmq" %}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--replay", "x", "--purge"], "give one of --replay, --replay-all or --purge"),
        (["--replay-all", "--json"], "--json goes with the list only"),
        (["--yes"], "--yes goes with --purge only"),
    ],
)
def test_dead_letters_refuses_options_that_do_not_go_together(
    args: list[str], message: str
) -> None:
    result = invoke("dead-letters", *args)
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {message}")
{%- else %}


def test_dead_letters_says_redis_has_none_and_where_failures_are() -> None:
    result = invoke("dead-letters")
    assert result.exit_code == 2
    [line] = result.output.splitlines()
    assert line.startswith("error: Redis has no dead-letter queue: ")
    assert "FAILURE result in the result backend (`status TASK_ID`)" in line
{%- endif %}
