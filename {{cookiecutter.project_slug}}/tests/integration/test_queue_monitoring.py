"""``queues``, the ``exporter`` and ``dead-letters`` on the real broker.

The exporter runs as a deployment runs it (``exporter --profile test``) and is scraped
over HTTP; the commands run in-process. Held work is ``fault_tasks.hold_until_released``
on a real worker process: it keeps its message unacknowledged until the test releases it.
"""

from __future__ import annotations

import json
import socket
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import closing
{%- if cookiecutter.broker == "rabbitmq" %}
from datetime import UTC, datetime
{%- endif %}
from pathlib import Path
from typing import Any

import pytest
{%- if cookiecutter.broker == "rabbitmq" %}
from celery.contrib.testing.worker import start_worker
{%- endif %}
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.celery_app import (
    CPU_QUEUE,
{%- if cookiecutter.broker == "rabbitmq" %}
    DEAD_LETTER_QUEUE,
{%- endif %}
    DEFAULT_QUEUE,
    ProjectCelery,
{%- if cookiecutter.broker == "rabbitmq" %}
    dead_letter_queue,
{%- endif %}
)
from {{ cookiecutter.package_name }}.cli import (
    app,
)
{%- if cookiecutter.broker == "redis" %}
from {{ cookiecutter.package_name }}.queue_depth import (
    redis_lists,
)
{%- endif %}

from .conftest import RunWorker, declare_queues
from .harness import (
    FAULT_TASKS,
    child_environment,
    eventually,
    process_group,
{%- if cookiecutter.broker == "rabbitmq" %}
    recorded,
    send,
{%- endif %}
    unique,
)

pytestmark = pytest.mark.integration
TIMEOUT = 30
runner = CliRunner()
# Counts by metric (or `queues --json` field), then by queue.
Counts = dict[str, dict[str, float]]
{%- if cookiecutter.broker == "redis" %}
# What the exporter serves on Redis, and the `queues --json` field of each.
FIELDS = {"celery_queue_depth": "ready", "celery_queue_unacked": "unacked"}
{%- else %}
QUEUES = (DEFAULT_QUEUE, CPU_QUEUE, DEAD_LETTER_QUEUE)
FIELDS = {"celery_queue_depth": "ready", "celery_queue_consumers": "consumers"}
{%- endif %}


def cli(*args: str) -> str:
    """Run a command of the test profile in-process; its output, failing on an error."""
    result = runner.invoke(app, [*args, "--profile", "test"])
    assert result.exit_code == 0, result.output
    return str(result.stdout)


def listed() -> Counts:
    """What ``queues --json`` says, as the exporter's metric names."""
    rows = json.loads(cli("queues", "--json"))
    return {metric: {row["queue"]: row[field] for row in rows} for metric, field in FIELDS.items()}


def scraped(url: str) -> Counts:
    """One scrape of the exporter."""
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback URL
        text = response.read().decode()
    return {
        family.name: {sample.labels["queue"]: sample.value for sample in family.samples}
        for family in text_string_to_metric_families(text)
    }


def counts(ready: float, held: float = 0, consumers: float = 0) -> Counts:
    """The expected numbers: ``ready`` and ``held`` (Redis: unacked; RabbitMQ: a worker
    holds them, out of both counts) on the default queue, nothing on the others."""
{%- if cookiecutter.broker == "redis" %}
    return {
        "celery_queue_depth": {DEFAULT_QUEUE: ready, CPU_QUEUE: 0.0},
        "celery_queue_unacked": {DEFAULT_QUEUE: held, CPU_QUEUE: 0.0},
    }
{%- else %}
    return {
        "celery_queue_depth": dict.fromkeys(QUEUES, 0.0) | {DEFAULT_QUEUE: ready},
        "celery_queue_consumers": dict.fromkeys(QUEUES, 0.0) | {DEFAULT_QUEUE: consumers},
    }
{%- endif %}


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def exporter_url(broker_app: ProjectCelery, tmp_path: Path) -> Iterator[str]:
    """``exporter --profile test`` in a process of its own; its /metrics URL."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "{{ cookiecutter.package_name }}",
        "exporter",
        "--profile=test",
        f"--port={port}",
    ]
    log = tmp_path / "exporter.log"
    with process_group(command, tmp_path, child_environment(), log) as process:
        url = f"http://127.0.0.1:{port}/metrics"

        def serving() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                return bool(scraped(url))
            except OSError:
                return False

        eventually(serving, TIMEOUT, f"the exporter did not serve {url}")
        yield url


def test_queues_and_the_exporter_count_waiting_held_and_drained_messages(
    broker_app: ProjectCelery, run_worker: RunWorker, exporter_url: str
) -> None:
    declare_queues(broker_app)
    release, waiting = unique("release"), 5
    # The hold outlasts the checks; the test profile's 3 s soft limit would not.
    work, limits = {"key": release, "seconds": 20}, {"soft_time_limit": 25, "time_limit": 27}
{%- if cookiecutter.broker == "redis" %}
    limits = {"soft_time_limit": 6, "time_limit": 7}  # under the 8 s visibility timeout
    work["seconds"] = 5
{%- endif %}
    held = [
        broker_app.send_task(
            f"{FAULT_TASKS}.hold_until_released", args=[work], priority=9 * (n % 2), **limits
        )
        for n in range(waiting)
    ]
{%- if cookiecutter.broker == "redis" %}
    with broker_app.connection_for_read() as connection:
        client: Any = connection.default_channel.client  # type: ignore[attr-defined]
        # The priority-9 messages wait in a list of their own: counting only the queue's
        # own list would miss them.
        assert [client.llen(key) for key in redis_lists(DEFAULT_QUEUE)] == [3, 0, 0, 2]
{%- endif %}
    assert listed() == scraped(exporter_url) == counts(ready=waiting)

    with run_worker(queue=DEFAULT_QUEUE, concurrency=2):
        # Two pool processes, a prefetch of one each (acks late): two taken, held.
        expected = counts(ready=waiting - 2, held=2, consumers=1)
        eventually(lambda: listed() == expected, TIMEOUT, f"never {expected}: {listed()}")
        assert scraped(exporter_url) == expected
        broker_app.provider.get().ledger.record_once(release, {"key": release})
        outcomes = [result.get(timeout=TIMEOUT) for result in held]
        assert [outcome["applied"] for outcome in outcomes] == [True] * waiting
        drained = counts(ready=0, consumers=1)
        # The last acknowledgement follows its result.
        eventually(lambda: listed() == drained, TIMEOUT, f"not drained: {listed()}")
        assert scraped(exporter_url) == drained
{%- if cookiecutter.broker == "rabbitmq" %}


def dead_letters(*args: str, answer: str | None = None) -> Any:
    """``dead-letters`` of the test profile, in-process (the result, exit code and all);
    ``answer`` is typed at its question."""
    return runner.invoke(app, ["dead-letters", *args, "--profile", "test"], input=answer)


def listed_dead_letters() -> list[dict[str, Any]]:
    """What ``dead-letters --json`` lists."""
    result = dead_letters("--json")
    assert result.exit_code == 0, result.output
    letters: list[dict[str, Any]] = json.loads(result.stdout)
    return letters


def test_dead_letters_are_listed_in_place_purged_and_replayed_to_run(
    broker_app: ProjectCelery, run_worker: RunWorker
) -> None:
    declare_queues(broker_app)
    with broker_app.connection_for_write() as connection:
        # Declared now: RabbitMQ drops what it dead-letters to a missing queue.
        dead_letter_queue()(connection.default_channel).declare()
    purged, replayed, replayed_too = unique("purged"), unique("replayed"), unique("replayed")
    before = datetime.now(UTC).replace(microsecond=0)
    # A worker that does not know fault_tasks refuses their messages: dead-lettered.
    with start_worker(
        broker_app, pool="threads", concurrency=1, perform_ping_check=False, shutdown_timeout=15
    ):
        send(broker_app, "work_then_apply", {"key": purged})
        wait_for_dead_letters(1)
        declined = dead_letters("--purge", answer="n\n")
        assert declined.exit_code == 1  # Aborted: nothing purged
        assert len(listed_dead_letters()) == 1
        result = dead_letters("--purge", "--yes")
        assert (result.exit_code, result.stdout) == (0, "purged 1 messages from dead_letter\n")
        sent = [
            send(broker_app, "work_then_apply", {"key": key}).id for key in (replayed, replayed_too)
        ]
        wait_for_dead_letters(2)
    letters = listed_dead_letters()
    assert [(letter["task_id"], letter["task"]) for letter in letters] == [
        (task_id, f"{FAULT_TASKS}.work_then_apply") for task_id in sent
    ]
    for letter in letters:
        death = (letter["queue"], letter["reason"], letter["deaths"])
        assert death == (DEFAULT_QUEUE, "rejected", 1)
        assert before <= datetime.fromisoformat(letter["first_death"]) <= datetime.now(UTC)
    # Listing took nothing away and kept the order.
    assert listed_dead_letters() == letters
    assert listed()["celery_queue_depth"][DEAD_LETTER_QUEUE] == 2

    with run_worker(queue=DEFAULT_QUEUE, concurrency=1):  # it knows fault_tasks
        result = dead_letters("--replay", sent[0])
        assert result.exit_code == 0, result.output
        task = f"{FAULT_TASKS}.work_then_apply"
        assert result.stdout == f"replayed {sent[0]} ({task}) to default\n"
        ran(broker_app, sent[0])
        assert [letter["task_id"] for letter in listed_dead_letters()] == sent[1:]
        missing = dead_letters("--replay", sent[0])
        assert missing.exit_code == 2
        # The last line: Celery may warn first (a deprecation, once per process).
        assert missing.output.splitlines()[-1].startswith(f"error: not in dead_letter: {sent[0]} ")
        result = dead_letters("--replay-all")
        assert result.exit_code == 0, result.output
        ran(broker_app, sent[1])
    assert [recorded(broker_app, key) for key in (purged, replayed, replayed_too)] == [0, 1, 1]
    assert listed_dead_letters() == []


def ran(app: ProjectCelery, task_id: str) -> None:
    """Wait until the task succeeded: its refusal's FAILURE is replaced by its result."""
    eventually(
        lambda: app.AsyncResult(task_id).state == "SUCCESS", TIMEOUT, f"{task_id} did not run"
    )


def wait_for_dead_letters(count: int) -> None:
    """Until ``queues`` counts ``count`` messages in dead_letter."""
    eventually(
        lambda: listed()["celery_queue_depth"][DEAD_LETTER_QUEUE] == count,
        TIMEOUT,
        f"not {count} messages dead-lettered",
    )
{%- endif %}
