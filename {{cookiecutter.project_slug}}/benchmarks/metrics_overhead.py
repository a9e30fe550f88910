"""Worker throughput with metrics off and on, side by side, on the test profile's broker.

Each round starts a prefork worker (``python -m {{ cookiecutter.package_name }} worker --queue
default``, concurrency 2) with ``metrics.enabled`` off or on, sends it ``--tasks``
process_data tasks once it answers, and measures the throughput from the first task
done to the last (the results' ``date_done``) and the CPU time the worker and its pool
processes spent per task. Rounds alternate off and on; the best of ``--rounds`` of each
is compared. On a shared machine the CPU time per task is the steadier of the two.

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
import time
from datetime import datetime
from pathlib import Path

import psutil
from celery import states
from celery.backends.base import BaseKeyValueStoreBackend

from {{ cookiecutter.package_name }} import (
    metrics,
)
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


def cpu_seconds(worker: psutil.Process) -> float:
    """CPU time (user + system) of the worker and its pool processes so far."""
    processes = [worker, *worker.children(recursive=True)]
    return sum(sum(process.cpu_times()[:2]) for process in processes)


def wait_until_ready(app: ProjectCelery, node: str, worker: subprocess.Popen[bytes]) -> None:
    """Block until the worker answers a ping."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited with {worker.returncode} at start-up")
        if app.control.ping(destination=[node], timeout=0.5):
            return
    raise SystemExit("the worker did not start within 60 s")


def run_round(app: ProjectCelery, tasks: int, enabled: bool, data_dir: str) -> tuple[float, float]:
    """Tasks per second, and CPU milliseconds per task, of one worker over ``tasks`` tasks."""
    app.control.purge()
    node = f"bench-{os.getpid()}@{socket.gethostname()}"
    settings = {
        "metrics.enabled": str(enabled).lower(),
        "metrics.port": str(free_port()),
        "data_dir": data_dir,
        # No recycling mid-round: a pool process that exits takes its CPU time with it.
        "worker.max_tasks_per_child": str(tasks * 10),
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
        f"--hostname={node}",
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
        wait_until_ready(app, node, worker)
        process = psutil.Process(worker.pid)
        before = cpu_seconds(process)
        payload = ProcessDataInput(value=1, label="benchmark")
        ids = [process_data.delay(payload).id for _ in range(tasks)]
        backend = app.backend
        assert isinstance(backend, BaseKeyValueStoreBackend)  # the test profile's Redis
        done = [
            datetime.fromisoformat(meta["date_done"]).timestamp()
            for _, meta in backend.get_many(ids, timeout=TIMEOUT, interval=0.5)
        ]
        used = cpu_seconds(process) - before
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    return (len(done) - 1) / (max(done) - min(done)), used / tasks * 1000


def handler_cost(runs: int = 20_000) -> float:
    """CPU microseconds the metrics' signal handlers add to one successful task, in-process.

    Run last: it points this process's prometheus-client at a folder of its own.
    """
    with tempfile.TemporaryDirectory() as folder:
        metrics.use_multiprocess_dir(Path(folder) / "metrics")
        metrics._active = metrics.WorkerMetrics.create("bench@host", (DEFAULT_QUEUE,), None)
        task = process_data.app.tasks[process_data.name]
        task.push_request(delivery_info={"routing_key": DEFAULT_QUEUE}, published_at=time.time())
        try:
            start = time.process_time()
            for _ in range(runs):
                metrics._on_prerun(task)
                metrics._on_success(task)
                metrics._on_postrun(task, state=states.SUCCESS)
            return (time.process_time() - start) / runs * 1e6
        finally:
            task.pop_request()
            metrics._active = None


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
    cpu: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as data_dir:
        try:
            for _ in range(args.rounds):
                for enabled in (False, True):
                    rate, cpu_ms = run_round(app, args.tasks, enabled, data_dir)
                    rates[enabled].append(rate)
                    cpu[enabled].append(cpu_ms)
                    state = "on " if enabled else "off"
                    print(f"metrics {state}  {rate:7.1f} tasks/s  {cpu_ms:6.2f} ms CPU per task")
        finally:
            app.control.purge()
    off, on = max(rates[False]), max(rates[True])
    print(f"best throughput: off {off:.1f}, on {on:.1f} tasks/s; cost {(1 - on / off) * 100:.1f} %")
    off, on = min(cpu[False]), min(cpu[True])
    print(f"least CPU per task: off {off:.2f}, on {on:.2f} ms; cost {(on / off - 1) * 100:.1f} %")
    handlers = handler_cost()
    share = handlers / 1000 / off * 100
    print(f"the signal handlers: {handlers:.0f} us CPU per task, {share:.1f} % of a task's CPU")


if __name__ == "__main__":
    main()
