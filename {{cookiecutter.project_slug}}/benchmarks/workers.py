"""One worker in its own process group: started, known to answer, measured, stopped.

Every benchmark runs its worker in a separate process, as production does, so the
producer's work never shares a CPU budget or a GIL with the tasks it measures.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import psutil
from celery import Celery
from celery.backends.base import BaseKeyValueStoreBackend
from celery.result import AsyncResult

from {{ cookiecutter.package_name }}.celery_app import (
    DEFAULT_QUEUE,
)
from {{ cookiecutter.package_name }}.config import (
    Settings,
    load_settings,
)
from {{ cookiecutter.package_name }}.config.settings import (
    ENV_PREFIX,
    environment_variable,
)

from .bare_worker import CONFIG_VARIABLE

START_TIMEOUT = 60
RESULT_TIMEOUT = 600
PACKAGE = "{{ cookiecutter.package_name }}"

# The production profile's worker behaviour on the test profile's broker (production
# itself refuses a broker on 127.0.0.1): the defaults the test profile shortens, and
# production's logs and metrics.
PRODUCTION_LIKE = {
    "tasks.soft_time_limit": "60",
    "tasks.time_limit": "90",
    "tasks.cpu.soft_time_limit": "20",
    "tasks.cpu.time_limit": "30",
    "broker.visibility_timeout": "3600",
    "heartbeat.interval": "5",
    "heartbeat.max_age": "60",
    "log.level": "INFO",
    "log.json_format": "true",
    "metrics.enabled": "true",
}


@dataclass(frozen=True)
class WorkerSpec:
    """What to start: bare Celery with some Celery settings, or the project's worker."""

    kind: Literal["bare", "project"]
    celery: Mapping[str, Any] = field(default_factory=dict)  # bare: Celery settings
    settings: Mapping[str, str] = field(default_factory=dict)  # project: settings keys
    queue: str = DEFAULT_QUEUE  # project: the queue it consumes, with its settings
    concurrency: int = 2


@dataclass
class RunningWorker:
    """A started worker that has answered a ping."""

    process: subprocess.Popen[bytes]
    node: str

    def processes(self) -> list[psutil.Process]:
        """The worker and its pool processes, as they are now."""
        main = psutil.Process(self.process.pid)
        return [main, *main.children(recursive=True)]

    def rss_bytes(self) -> float:
        """Resident memory of the worker and its pool processes together."""
        return sum(_quietly(lambda p: p.memory_info().rss, p) for p in self.processes())

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the worker and its pool processes, recycled ones too.

        A pool process that has exited cannot be read, but once the worker has reaped it
        its time is in the worker's own ``children_*`` times.
        """
        main, *pool = self.processes()
        own = main.cpu_times()
        reaped = own.children_user + own.children_system
        return own.user + own.system + reaped + sum(_quietly(_cpu, process) for process in pool)

    def pool_pids(self) -> set[int]:
        """The pool processes' ids: a new id means a process was recycled."""
        return {process.pid for process in self.processes()[1:]}


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _quietly(read: Callable[[psutil.Process], float], process: psutil.Process) -> float:
    # A pool process may exit between listing and reading it (recycling): count 0.
    try:
        return read(process)
    except psutil.NoSuchProcess:
        return 0


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def environment(overrides: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without project settings, plus ``overrides``."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith(ENV_PREFIX)}
    return clean | {environment_variable(key): value for key, value in overrides.items()}


def project_settings(overrides: Mapping[str, str]) -> Settings:
    """The test profile with ``overrides``, read as the worker will read them."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environment(overrides))
    try:
        return load_settings("test", env_file=None)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def worker_command(spec: WorkerSpec, node: str) -> list[str]:
    """The command line that starts ``spec``'s worker."""
    quiet = ["--without-mingle", "--without-gossip", f"--hostname={node}"]
    if spec.kind == "bare":
        return [
            *(sys.executable, "-m", "celery", "-A", "benchmarks.bare_worker", "worker"),
            *(f"--concurrency={spec.concurrency}", "--pool=prefork", "--loglevel=WARNING"),
            *quiet,
        ]
    return [
        *(sys.executable, "-m", PACKAGE, "worker", "--profile=test"),
        *(f"--queue={spec.queue}", f"--concurrency={spec.concurrency}", "--"),
        *quiet,
        "--include=benchmarks.plain",
    ]


@contextmanager
def running(spec: WorkerSpec, app: Celery) -> Iterator[RunningWorker]:
    """Start ``spec``'s worker, wait until it answers ``app``'s ping, stop it afterwards."""
    node = f"bench-{os.getpid()}-{time.monotonic_ns()}@{socket.gethostname()}"
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as data_dir:
        if spec.kind == "bare":
            env = environment({}) | {CONFIG_VARIABLE: json.dumps(dict(spec.celery))}
        else:
            own = {"data_dir": data_dir, "metrics.port": str(free_port())}
            env = environment({**spec.settings, **own})
        # Its logs go to a file, as a container's go to the runtime: a pipe nobody reads
        # would fill up and stop the worker at its next log line.
        log = Path(data_dir) / "worker.log"
        with log.open("wb") as output:
            process = subprocess.Popen(  # noqa: S603 - our own command line
                worker_command(spec, node),
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _wait_until_ready(app, node, process, log)
            yield RunningWorker(process, node)
        finally:
            _stop(process)


def _wait_until_ready(app: Celery, node: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text(errors="replace")[-3000:]
            raise SystemExit(f"the worker exited with {process.returncode} at start-up:\n{output}")
        if app.control.ping(destination=[node], timeout=0.5):
            return
    raise SystemExit(f"the worker did not answer within {START_TIMEOUT} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    # The measurement is over: a cold shutdown (SIGQUIT) skips the soft shutdown wait.
    try:
        os.killpg(process.pid, signal.SIGQUIT)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        process.wait()


@dataclass(frozen=True)
class Throughput:
    """Tasks per second: published by the producer, and from first publish to last result."""

    enqueue: float
    end_to_end: float


def send_and_wait(app: Celery, send: Callable[[], AsyncResult[Any]], count: int) -> Throughput:
    """Send ``count`` tasks, wait for every result; enqueue and end-to-end rates."""
    start = time.time()
    ids = [send().id for _ in range(count)]
    sent = time.time()
    backend = app.backend
    if not isinstance(backend, BaseKeyValueStoreBackend):  # the test profile's Redis
        raise SystemExit(f"benchmarks need a key-value result store, not {type(backend)}")
    done = [
        datetime.fromisoformat(meta["date_done"]).timestamp()
        for _, meta in backend.get_many(ids, timeout=RESULT_TIMEOUT, interval=0.2)
    ]
    return Throughput(enqueue=count / (sent - start), end_to_end=count / (max(done) - start))
