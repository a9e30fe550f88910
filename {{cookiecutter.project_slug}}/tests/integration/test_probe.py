"""``probe --liveness|--readiness`` against real worker processes on the real broker.

The test profile writes the heartbeat every 0.5 s and calls it stale after 3 s, so
each scenario settles in seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
)
from {{ cookiecutter.package_name }}.heartbeat import (
    Verdict,
    heartbeat_path,
    liveness,
    read_beat,
    readiness,
)

from .conftest import RunWorker
from .harness import WorkerProcess, eventually
from .proxy import proxy_to

pytestmark = pytest.mark.integration
TIMEOUT = 30


def probe(app: ProjectCelery, worker: WorkerProcess, question: str) -> Verdict:
    """What ``probe --<question>`` answers for this worker now (read in-process)."""
    # The worker runs in the test's tmp_path, where its log is: data_dir is relative.
    path = heartbeat_path(worker.log.parent / app.settings.data_dir, worker.node)
    check = liveness if question == "liveness" else readiness
    return check(read_beat(path), time.time(), app.settings.heartbeat.max_age)


def ready(app: ProjectCelery, worker: WorkerProcess) -> bool:
    """Whether ``probe --readiness`` passes for this worker now."""
    return probe(app, worker, "readiness").ok


def probe_command(worker: WorkerProcess, question: str) -> subprocess.CompletedProcess[str]:
    """``probe`` run as Kubernetes would: a command in the worker's folder."""
    command = [sys.executable, "-m", "{{ cookiecutter.package_name }}", "probe", f"--{question}"]
    return subprocess.run(  # noqa: S603 - our own command line
        [*command, "--profile=test", f"--node={worker.node}"],
        cwd=worker.log.parent,
        env={name: value for name, value in os.environ.items() if name != "APP_ENV"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def test_a_healthy_worker_is_live_and_ready_until_it_exits(
    broker_app: ProjectCelery, run_worker: RunWorker
) -> None:
    with run_worker(concurrency=1) as worker:
        for question in ("liveness", "readiness"):
            began = time.monotonic()
            answer = probe_command(worker, question)
            elapsed = time.monotonic() - began
            assert answer.returncode == 0, answer.stderr
            word = "live" if question == "liveness" else "ready"
            assert answer.stdout.startswith(f"{word}: heartbeat "), answer.stdout
            assert "broker connected" in answer.stdout
            print(f"\nprobe --{question}: {elapsed:.2f}s, {answer.stdout.strip()}")
        worker.signal(signal.SIGTERM)  # a warm shutdown removes the file
        assert worker.wait(timeout=TIMEOUT) == 0
    assert probe(broker_app, worker, "liveness").reason.startswith("not live: no heartbeat file")


def test_a_worker_cut_off_from_its_broker_is_live_but_not_ready_until_it_returns(
    broker_app: ProjectCelery, run_worker: RunWorker
) -> None:
    proxy, proxied = proxy_to(broker_app.settings.broker.url)
    max_age = broker_app.settings.heartbeat.max_age
    try:
        with run_worker(concurrency=1, settings={"broker.url": proxied}) as worker:
            eventually(lambda: ready(broker_app, worker), TIMEOUT, "never ready")
            with proxy.cut():
                eventually(lambda: not ready(broker_app, worker), 10, "still ready")
                assert "broker not connected" in probe(broker_app, worker, "readiness").reason
                # Past the max age: a worker waiting for its broker is not wedged.
                until = time.monotonic() + max_age + 1
                while time.monotonic() < until:
                    verdict = probe(broker_app, worker, "liveness")
                    assert verdict.ok, verdict.reason
                    time.sleep(0.2)
            back = time.monotonic()
            eventually(lambda: ready(broker_app, worker), TIMEOUT, "not ready again")
            print(f"\nready again {time.monotonic() - back:.1f}s after the broker came back")
            assert probe(broker_app, worker, "liveness").ok
    finally:
        proxy.close()


def test_a_stopped_worker_fails_liveness(broker_app: ProjectCelery, run_worker: RunWorker) -> None:
    max_age = broker_app.settings.heartbeat.max_age
    with run_worker(concurrency=1) as worker:
        eventually(lambda: probe(broker_app, worker, "liveness").ok, TIMEOUT, "never live")
        worker.signal(signal.SIGSTOP)
        try:
            stopped = time.monotonic()
            eventually(
                lambda: not probe(broker_app, worker, "liveness").ok, max_age + 5, "still live"
            )
            assert time.monotonic() - stopped > max_age - 1  # not before the max age
            # Both clocks stop; whichever is found old first is named.
            assert "max age" in probe(broker_app, worker, "liveness").reason
            answer = probe_command(worker, "liveness")
            assert answer.returncode == 1
            assert answer.stderr.startswith("not live: heartbeat "), answer.stderr
            assert not probe(broker_app, worker, "readiness").ok
        finally:
            worker.signal(signal.SIGCONT)
        eventually(lambda: probe(broker_app, worker, "liveness").ok, TIMEOUT, "not live again")
