"""Worker throughput with metrics off and on, side by side, on the test profile's broker.

Each round queues ``--tasks`` process_data tasks, starts a prefork worker
(``python -m {{ cookiecutter.package_name }} worker --queue default``, concurrency 2) with
``metrics.enabled`` off or on, and measures from the first task done to the last (from the
results' ``date_done``, so the worker's start-up is left out). Rounds alternate off and
on; the best of ``--rounds`` of each is compared.

    uv run python benchmarks/metrics_overhead.py [--tasks 2000] [--rounds 3]

Talks to 127.0.0.1 only, runs a bounded number of tasks, purges the queue before each
round. A benchmark, not a test: it prints numbers and judges nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
from datetime import datetime

import psutil
from celery.backends.base import BaseKeyValueStoreBackend

from {{ cookiecutter.package_name }}.celery_app import (
    DEFAULT_QUEUE,
    ProjectCelery,
    create_app,
)
from {{ cookiecutter.package_name }}.config import (
    load_settings,
)
from {{ cookiecutter.package_name }}.config.settings import (
    ENV_PREFIX,
    environment_variable,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    process_data,
)

CONCURRENCY = 2
TIMEOUT = 300


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run_round(app: ProjectCelery, tasks: int, metrics: bool, data_dir: str) -> float:
    """Tasks per second of one worker over ``tasks`` queued process_data tasks."""
    app.control.purge()
    payload = ProcessDataInput(value=1, label="benchmark")
    ids = [process_data.delay(payload).id for _ in range(tasks)]
    settings = {
        "metrics.enabled": str(metrics).lower(),
        "metrics.port": str(free_port()),
        "data_dir": data_dir,
    }
    environment = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    environment |= {environment_variable(key): value for key, value in settings.items()}
    command = [
        sys.executable,
        "-m",
        "{{ cookiecutter.package_name }}",
        "worker",
        "--profile=test",
        f"--queue={DEFAULT_QUEUE}",
        f"--concurrency={CONCURRENCY}",
        "--",
        f"--hostname=bench-{os.getpid()}@%h",
        "--without-mingle",
        "--without-gossip",
    ]
    worker = subprocess.Popen(  # noqa: S603 - our own command line
        command,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        backend = app.backend
        assert isinstance(backend, BaseKeyValueStoreBackend)  # the test profile's Redis
        done = [
            datetime.fromisoformat(meta["date_done"]).timestamp()
            for _, meta in backend.get_many(ids, timeout=TIMEOUT, interval=0.5)
        ]
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    return (len(done) - 1) / (max(done) - min(done))


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = load_settings("test", env_file=None)
    app = create_app(settings)
    cpus = psutil.cpu_count()
    print(
        f"broker {settings.broker.scheme}, {args.tasks} process_data tasks per round, "
        f"prefork concurrency {CONCURRENCY}; {platform.processor() or platform.machine()}, "
        f"{cpus} CPUs, Python {platform.python_version()}"
    )
    rates: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as data_dir:
        try:
            for _ in range(args.rounds):
                for metrics in (False, True):
                    rate = run_round(app, args.tasks, metrics, data_dir)
                    rates[metrics].append(rate)
                    print(f"metrics {'on ' if metrics else 'off'}  {rate:7.1f} tasks/s")
        finally:
            app.control.purge()
    off, on = max(rates[False]), max(rates[True])
    print(f"best: off {off:.1f} tasks/s, on {on:.1f} tasks/s; cost {(1 - on / off) * 100:.1f} %")


if __name__ == "__main__":
    main()
