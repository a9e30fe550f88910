"""One beat sends, a standby takes over: two real beats on the test profile's Redis.

Each beat runs as deployed (``beat --profile=test``) through ``beat_runner``, which
records every message the broker took. The schedule has one entry every second; the
test profile's lock outlives a dead beat by ``beat.lock_timeout`` (3 s).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path

import pytest
import redis

from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
)
from {{ cookiecutter.package_name }}.config.settings import (
    environment_variable,
)

from .conftest import declare_queues
from .harness import child_environment, eventually, kill_group, process_group, queued

pytestmark = pytest.mark.integration

PERIOD = 1.0
STEADY = 5.0  # seconds of two beats side by side
START_TIMEOUT = 30


class Beat:
    """A beat process and the publishes it recorded."""

    def __init__(self, process: subprocess.Popen[bytes], sent: Path, log: Path) -> None:
        self.process = process
        self.sent = sent
        self.log = log

    def publishes(self) -> list[float]:
        """When each message this beat published was taken by the broker."""
        if not self.sent.exists():
            return []
        return [float(line.split()[0]) for line in self.sent.read_text().splitlines()]

    def kill(self) -> None:
        """SIGKILL the beat, as when its machine dies: it cannot release its lock."""
        kill_group(self.process)


@pytest.fixture
def beat_settings(broker_app: ProjectCelery) -> Iterator[dict[str, str]]:
    """Environment for beats of this test: its own key prefix, one entry a second.

    The work queues are emptied before and after; the prefix's keys are deleted after.
    """
    prefix = f"{{ cookiecutter.project_slug }}:test-{uuid.uuid4()}:"
    entry = {"task": "process_data", "schedule": PERIOD, "payload": {"value": 1, "label": "b"}}
    declare_queues(broker_app)  # beat publishes before any worker declares them
    purge_work_queues(broker_app)
    yield {
        environment_variable("beat.key_prefix"): prefix,
        environment_variable("beat.schedule"): json.dumps({"every_second": entry}),
    }
    purge_work_queues(broker_app)
    client = redis.Redis.from_url(broker_app.conf.redbeat_redis_url)
    with client:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)


def purge_work_queues(app: ProjectCelery) -> None:
    """Drop the messages of the declared work queues.

    Purged, not deleted: on Redis, kombu deletes a queue only if this connection
    declared its binding, so ``delete_queues`` can leave the messages in place.
    """
    with app.connection_for_write() as connection:
        for queue in app.amqp.queues.values():
            queue(connection.default_channel).purge()


@contextmanager
def beat_process(tmp_path: Path, settings: dict[str, str], name: str) -> Iterator[Beat]:
    """Start ``beat --profile=test`` in its own process group; kill it after."""
    log = tmp_path / f"{name}.log"
    command = [
        sys.executable,
        "-m",
        "tests.integration.beat_runner",
        str(tmp_path / f"{name}.sent"),
        "beat",
        "--profile=test",
    ]
    with process_group(command, tmp_path, child_environment(settings), log) as process:
        yield Beat(process, tmp_path / f"{name}.sent", log)


def logs(*beats: Beat) -> str:
    """The beats' output, for a failure message."""
    return "\n".join(beat.log.read_text(errors="replace") for beat in beats)


def check_once_per_period(times: list[float], who: str) -> None:
    """No two sends within one period, none skipped: gaps of about one period."""
    gaps = [later - earlier for earlier, later in pairwise(times)]
    assert gaps, f"{who} sent {len(times)} message(s)"
    assert min(gaps) > PERIOD / 2, f"{who} sent twice in one period: gaps {gaps}"
    assert max(gaps) < 2 * PERIOD, f"{who} skipped a period: gaps {gaps}"


def test_two_beats_send_once_per_period_and_a_standby_replaces_a_dead_one(
    broker_app: ProjectCelery, beat_settings: dict[str, str], tmp_path: Path
) -> None:
    settings = broker_app.settings.beat
    with (
        beat_process(tmp_path, beat_settings, "first") as first,
        beat_process(tmp_path, beat_settings, "second") as second,
    ):
        eventually(
            lambda: bool(first.publishes() or second.publishes()),
            START_TIMEOUT,
            f"no beat sent anything:\n{logs(first, second)}",
        )
        started = time.time()
        time.sleep(STEADY)
        assert first.process.poll() is None, logs(first, second)
        assert second.process.poll() is None, logs(first, second)
        holder, standby = (first, second) if first.publishes() else (second, first)
        assert standby.publishes() == [], f"both beats sent:\n{logs(first, second)}"
        sent = holder.publishes()
        check_once_per_period(sent, "the lock holder")
        in_window = [t for t in sent if started <= t < started + STEADY]
        assert abs(len(in_window) - STEADY / PERIOD) <= 1, sent

        holder.kill()
        killed = time.time()
        takeover = settings.lock_timeout + settings.max_interval + PERIOD
        eventually(
            lambda: bool(standby.publishes()),
            takeover + 5,
            f"the standby never took over:\n{logs(first, second)}",
        )
        took = standby.publishes()[0] - killed
        assert took <= takeover, f"took over after {took:.1f}s:\n{logs(first, second)}"
        print(f"standby sent {took:.1f}s after the holder was killed (bound {takeover:g}s)")
        time.sleep(2.5 * PERIOD)
        check_once_per_period(standby.publishes(), "the new holder")
        assert holder.publishes() == sent  # a dead beat sends nothing
        published = len(sent) + len(standby.publishes())
    # The broker holds what the beats recorded, and at most one more: SIGKILL may land
    # between the broker taking a message and the holder recording it (that run was
    # reserved in Redis before it was sent, so the standby does not send it again).
    assert published <= queued(broker_app) <= published + 1
