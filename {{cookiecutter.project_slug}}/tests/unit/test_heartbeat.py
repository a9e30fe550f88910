"""The worker heartbeat and ``probe``: reading the file, and the step writing it on the
embedded broker (its blocking loop); the real brokers are in tests/integration."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from pydantic import ValidationError
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
)
from {{ cookiecutter.package_name }}.cli import (
    app,
)
from {{ cookiecutter.package_name }}.config.settings import (
    HeartbeatSettings,
)
from {{ cookiecutter.package_name }}.heartbeat import (
    Beat,
    HeartbeatWriter,
    Phase,
    heartbeat_path,
    liveness,
    read_beat,
    readiness,
)

NOW = 1_000_000.0
MAX_AGE = 60
NODE = "w1@host"
DATA_DIR = Path(".{{ cookiecutter.project_slug }}")  # the local profile's, relative to the cwd


def beat(
    phase: Phase = Phase.CONSUMING, age: float = 1, loop_age: float = 2, since: float = 30
) -> Beat:
    """A heartbeat written ``age`` seconds before NOW."""
    return Beat(
        node=NODE,
        pid=1,
        phase=phase,
        phase_since=NOW - since,
        written_at=NOW - age,
        loop_at=NOW - loop_age,
    )


def test_a_fresh_consuming_worker_is_live_and_ready() -> None:
    assert liveness(beat(), NOW, MAX_AGE).reason == (
        "live: heartbeat 1.0s old (max age 60s), broker connected"
    )
    assert readiness(beat(), NOW, MAX_AGE).ok


def test_a_stale_heartbeat_fails_both_naming_its_age_and_the_threshold() -> None:
    stale = beat(age=61)
    for verdict in (liveness(stale, NOW, MAX_AGE), readiness(stale, NOW, MAX_AGE)):
        assert not verdict.ok
        assert "heartbeat 61.0s old (max age 60s)" in verdict.reason
        assert verdict.reason.endswith("the worker process is stopped or hung")


def test_a_blocked_consumer_loop_fails_liveness_though_the_process_writes() -> None:
    verdict = liveness(beat(loop_age=75), NOW, MAX_AGE)
    assert not verdict.ok
    assert "consumer loop last ran 75.0s ago, over the max age of 60s" in verdict.reason


def test_a_worker_reconnecting_to_its_broker_is_live_but_not_ready() -> None:
    # Celery runs no consumer loop while it reconnects: an old loop_at is expected then.
    down = beat(Phase.CONNECTING, loop_age=600, since=12)
    assert liveness(down, NOW, MAX_AGE).ok
    verdict = readiness(down, NOW, MAX_AGE)
    assert not verdict.ok
    assert verdict.reason == (
        "not ready: heartbeat 1.0s old (max age 60s), "
        "broker not connected for 12s (reconnecting)"
    )


def test_a_worker_finishing_its_tasks_on_shutdown_is_live_but_not_ready() -> None:
    stopping = beat(Phase.STOPPING, loop_age=600, since=5)
    assert liveness(stopping, NOW, MAX_AGE).ok
    assert readiness(stopping, NOW, MAX_AGE).reason.endswith("worker shutting down for 5s")


def test_a_missing_file_fails_both() -> None:
    assert read_beat(Path("nowhere.json")) is None
    assert not liveness(None, NOW, MAX_AGE).ok
    assert readiness(None, NOW, MAX_AGE).reason.startswith("not ready: no heartbeat file")


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"w\.json is not a heartbeat file"):
        read_beat(path)


def test_the_writer_replaces_its_file_and_removes_it_on_stop(tmp_path: Path) -> None:
    path = heartbeat_path(tmp_path, NODE)
    writer = HeartbeatWriter(path, NODE, interval=0.05)
    writer.start()
    first = wait_for_beat(path)
    assert first.phase is Phase.CONNECTING
    writer.enter(Phase.CONSUMING)
    deadline = time.monotonic() + 5
    while (current := wait_for_beat(path)).phase is not Phase.CONSUMING:
        assert time.monotonic() < deadline, "the writer never wrote the new phase"
    assert current.written_at > first.written_at
    writer.stop()
    assert not path.exists()
    assert list(path.parent.iterdir()) == []  # no partial file left behind


def wait_for_beat(path: Path) -> Beat:
    """The file's content once it exists."""
    deadline = time.monotonic() + 5
    while (found := read_beat(path)) is None:
        assert time.monotonic() < deadline, f"no heartbeat at {path}"
        time.sleep(0.01)
    return found


def test_max_age_must_leave_room_for_a_late_write() -> None:
    with pytest.raises(ValidationError, match=r"max_age \(5\) must be at least twice interval"):
        HeartbeatSettings(interval=5, max_age=5)


runner = CliRunner()


def write(beat: Beat, node: str = NODE) -> None:
    """Put a heartbeat where a worker named ``node`` keeps it in the local profile."""
    path = heartbeat_path(DATA_DIR, node)
    path.parent.mkdir(parents=True)
    path.write_text(beat.model_dump_json())


def fresh(phase: Phase = Phase.CONSUMING) -> Beat:
    """A heartbeat written just now."""
    now = time.time()
    return Beat(node=NODE, pid=1, phase=phase, phase_since=now, written_at=now, loop_at=now)


def test_probe_exits_0_with_one_line_when_ready() -> None:
    write(fresh())
    result = runner.invoke(app, ["probe", "--readiness", "--node", NODE])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ready: heartbeat 0.")
    assert result.stdout.count("\n") == 1


def test_probe_exits_1_while_the_broker_is_down_and_stays_live() -> None:
    write(fresh(Phase.CONNECTING))
    ready = runner.invoke(app, ["probe", "--readiness", "--node", NODE])
    assert ready.exit_code == 1
    assert "broker not connected" in ready.stderr
    assert runner.invoke(app, ["probe", "--liveness", "--node", NODE]).exit_code == 0


def test_probe_exits_1_on_a_stale_heartbeat() -> None:
    write(beat(age=time.time() - NOW + 61))  # written 61 s ago, max age 60 s
    result = runner.invoke(app, ["probe", "--liveness", "--node", NODE])
    assert result.exit_code == 1
    assert "max age 60s" in result.stderr
    assert "stopped or hung" in result.stderr


def test_probe_finds_the_default_node_name_and_says_where_it_looked() -> None:
    result = runner.invoke(app, ["probe", "--liveness"])
    assert result.exit_code == 1
    assert "no heartbeat file" in result.stderr
    assert "heartbeats/celery@" in result.stderr


def test_probe_names_the_heartbeats_it_did_find() -> None:
    write(fresh(), node="cpu@host")
    result = runner.invoke(app, ["probe", "--readiness"])
    assert result.exit_code == 1
    assert "; heartbeats here: cpu@host (pass --node) [" in result.stderr


def test_probe_needs_exactly_one_question() -> None:
    for args in ([], ["--liveness", "--readiness"]):
        result = runner.invoke(app, ["probe", *args])
        assert result.exit_code == 2
        assert "pass one of --liveness or --readiness" in result.stderr


def quick_heartbeat(app: ProjectCelery, max_age: float) -> ProjectCelery:
    """The app, its heartbeat written every 0.2 s."""
    heartbeat = HeartbeatSettings(interval=0.2, max_age=max_age)
    app.settings = app.settings.model_copy(update={"heartbeat": heartbeat})
    return app


def test_the_embedded_brokers_blocking_loop_keeps_the_heartbeat(local_app: ProjectCelery) -> None:
    """The filesystem transport has no event loop: the loop itself must record loop_at."""
    settings = quick_heartbeat(local_app, max_age=5).settings
    path = heartbeat_path(settings.data_dir, NODE)
    with start_worker(local_app, pool="solo", perform_ping_check=False, hostname=NODE):
        started = time.time()
        deadline = time.monotonic() + 20
        # The loop drains the broker every 2 s at most, so it checks in that often.
        while not ((found := read_beat(path)) and found.loop_at > started + 1):
            assert time.monotonic() < deadline, f"the loop never checked in: {found}"
            time.sleep(0.1)
        assert readiness(found, time.time(), settings.heartbeat.max_age).ok
    assert not path.exists()


def test_a_consumer_loop_blocked_by_a_task_fails_liveness(local_app: ProjectCelery) -> None:
    """The solo pool runs a task inside the loop: the process writes on, the loop is stuck."""
    settings = quick_heartbeat(local_app, max_age=1).settings
    path = heartbeat_path(settings.data_dir, NODE)

    @local_app.task(name="tests.block_the_loop", shared=False)
    def block_the_loop(seconds: float) -> None:
        time.sleep(seconds)

    with start_worker(local_app, pool="solo", perform_ping_check=False, hostname=NODE):
        block_the_loop.delay(3)
        deadline = time.monotonic() + 10
        # The worker starts in a thread: judge its loop only once it has run and said so.
        while not ((beat := read_beat(path)) and beat.phase is Phase.CONSUMING):
            assert time.monotonic() < deadline, "the worker never started consuming"
            time.sleep(0.05)
        while (verdict := liveness(read_beat(path), time.time(), 1)).ok:
            assert time.monotonic() < deadline, "a blocked loop still passed liveness"
            time.sleep(0.1)
        assert "consumer loop last ran" in verdict.reason
        assert verdict.reason.endswith("the loop is blocked")
