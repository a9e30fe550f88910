"""The README's first minutes, for real: the project's own CLI starts a worker on the
embedded filesystem broker (prefork pool, no server) and a submitted task comes back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import Project, tool_env

PAYLOAD = '{"value": 42, "label": "hello"}'
EXPECTED = {"message": "Processed: 42 - hello"}


@pytest.fixture
def local_worker(installed: Project, tmp_path: Path) -> Iterator[Path]:
    """A worker process of the local profile; yields its log file, stops it afterwards."""
    log = tmp_path / "worker.log"
    with log.open("w") as output:
        worker = subprocess.Popen(
            ["uv", "run", "--frozen", installed.combination.slug, "worker"],
            cwd=installed.path,
            env={**tool_env(), "APP_ENV": "local"},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so the whole process group can be stopped
        )
        try:
            yield log
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=10)


def test_submit_wait_and_status_through_a_real_worker(
    installed: Project, local_worker: Path
) -> None:
    cli = ["uv", "run", "--frozen", installed.combination.slug]
    waited = installed.run(*cli, "submit", "process_data", "--json", PAYLOAD, "--wait")
    assert json.loads(waited.stdout) == EXPECTED, local_worker.read_text()

    task_id = installed.run(*cli, "submit", "process_data", "--json", PAYLOAD).stdout.strip()
    deadline = time.monotonic() + 30
    report: dict[str, object] = {}
    while time.monotonic() < deadline:
        report = json.loads(installed.run(*cli, "status", task_id).stdout)
        if report["state"] == "SUCCESS":
            break
        time.sleep(0.5)
    assert report == {"task_id": task_id, "state": "SUCCESS", "result": EXPECTED}
