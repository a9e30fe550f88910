"""``worker --reload`` for real: a changed file under the package restarts the worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import {{ cookiecutter.package_name }}

from .harness import process_group

pytestmark = pytest.mark.integration

READY = "ready."
PROFILE = Path({{ cookiecutter.package_name }}.__file__).parent / "config" / "local.toml"


def wait_for(log: Path, text: str, count: int, timeout: float = 60) -> None:
    """Wait until ``text`` occurs ``count`` times in the log, or fail showing it."""
    deadline = time.monotonic() + timeout
    while log.read_text().count(text) < count:
        if time.monotonic() > deadline:
            pytest.fail(f"{text!r} not seen {count} times in {timeout}s:\n{log.read_text()}")
        time.sleep(0.2)


def test_a_changed_file_restarts_the_worker(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    command = [sys.executable, "-m", "{{ cookiecutter.package_name }}", "worker", "--reload"]
    environment = {**os.environ, "APP_ENV": "local"}
    with process_group(command, tmp_path, environment, log):
        wait_for(log, READY, 1)
        PROFILE.write_bytes(PROFILE.read_bytes())  # a save that changes nothing
        wait_for(log, "detected", 1)  # watchfiles: "1 change detected"
        wait_for(log, READY, 2)
        assert "SIGKILL" not in log.read_text()  # the first worker shut down warm


def test_ctrl_c_on_an_idle_worker_skips_the_soft_shutdown(tmp_path: Path) -> None:
    """No 30 s soft shutdown for an idle worker: Ctrl-C sends it two SIGINTs."""
    log = tmp_path / "worker.log"
    command = [sys.executable, "-m", "{{ cookiecutter.package_name }}", "worker", "--reload"]
    environment = {**os.environ, "APP_ENV": "local"}
    with process_group(command, tmp_path, environment, log) as process:
        wait_for(log, READY, 1)
        os.killpg(process.pid, signal.SIGINT)  # a terminal's Ctrl-C: the whole group
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running 20 s after Ctrl-C:\n{log.read_text()}")
    assert "Soft Shutdown" not in log.read_text()
