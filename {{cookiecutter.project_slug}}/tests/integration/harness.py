"""The fault tests' harness: real worker processes, and probes that look at the
broker and the ledger from outside.

A worker runs as ``python -m {{ cookiecutter.package_name }} worker --profile test``, the way a
deployment runs it, in its own process group so a test can kill it and its pool.
It loads ``fault_tasks`` too. The test process never imports that module: its
tasks would join every app of the session (Celery shares tasks across apps).
"""

from __future__ import annotations
{% if cookiecutter.broker == "redis" %}
import json
{%- endif %}
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from celery.backends.base import BaseKeyValueStoreBackend
from celery.exceptions import TimeoutError as ResultTimeout
from celery.result import AsyncResult

from {{ cookiecutter.package_name }}.celery_app import (
    DEFAULT_QUEUE,
    ProjectCelery,
    dead_letter_queue,
)
from {{ cookiecutter.package_name }}.config.settings import (
    ENV_PREFIX,
    environment_variable,
)
from {{ cookiecutter.package_name }}.queue_depth import (
    queue_depth,
)

PROJECT = Path(__file__).resolve().parents[2]
FAULT_TASKS = "tests.integration.fault_tasks"
START_TIMEOUT = 30


def child_environment(settings: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without the project's settings, plus ``settings`` (environment
    variables): a child of the test profile sees only what its test gives it. The
    project folder is importable, for the test modules a child loads."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(ENV_PREFIX) and name != "APP_ENV"
    }
    environment |= settings or {}
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(PROJECT), environment.get("PYTHONPATH")])
    )
    return environment


@contextmanager
def process_group(
    command: Sequence[str], cwd: Path, environment: Mapping[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` in a process group of its own, its output in ``log``; kill the
    whole group (a worker and its pool, say) when done."""
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own command line
            command,
            cwd=cwd,
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        kill_group(process)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process and its group at once, as when its machine dies."""
    with suppress(ProcessLookupError):  # the whole group has exited already
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


class WorkerProcess:
    """A running worker: its process, its node name and its log file."""

    def __init__(self, process: subprocess.Popen[bytes], node: str, log: Path) -> None:
        self.process = process
        self.node = node
        self.log = log

    @property
    def alive(self) -> bool:
        """Whether the worker's main process is still running."""
        return self.process.poll() is None

    def output(self) -> str:
        """Everything the worker logged so far."""
        return self.log.read_text(errors="replace")

    def signal(self, signum: signal.Signals) -> None:
        """Send a signal to the worker's main process only (as a supervisor would)."""
        self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL the worker and its pool at once, as when its machine dies."""
        kill_group(self.process)

    def wait(self, timeout: float) -> int:
        """Wait for the worker to exit; its exit code."""
        return self.process.wait(timeout=timeout)


def send(app: ProjectCelery, name: str, payload: dict[str, Any]) -> AsyncResult[Any]:
    """Publish a task of ``fault_tasks`` by name, its payload as its model's JSON."""
    return app.send_task(f"{FAULT_TASKS}.{name}", args=[payload])


def unique(prefix: str) -> str:
    """A key no other run uses."""
    return f"{prefix}-{uuid.uuid4()}"


@contextmanager
def worker_process(
    app: ProjectCelery,
    tmp_path: Path,
    *,
    concurrency: int = 2,
    settings: dict[str, str] | None = None,
    ready: bool = True,
    include: Sequence[str] = (),
    queue: str | None = None,
) -> Iterator[WorkerProcess]:
    """Start a worker of the test profile, wait until it answers, stop it after.

    ``settings`` are overrides by dotted key, passed as environment variables;
    ``ready=False`` does not wait, for a worker its first task kills at once;
    ``include`` are more test modules to load after ``fault_tasks``; ``queue`` runs
    one queue's worker (``worker --queue``) instead of one for every queue.
    """
    node = f"{unique('fault')}@{socket.gethostname()}"
    log = tmp_path / f"{node.partition('@')[0]}.log"
    # It runs in tmp_path, so no developer .env applies.
    environment = child_environment(
        {environment_variable(key): value for key, value in (settings or {}).items()}
    )
    command = [
        sys.executable,
        "-m",
        "{{ cookiecutter.package_name }}",
        "worker",
        "--profile=test",
        f"--concurrency={concurrency}",
        *([f"--queue={queue}"] if queue else []),
        "--",
        f"--hostname={node}",
        f"--include={','.join([FAULT_TASKS, *include])}",
        # Nothing to sync with: each test's worker is alone on its queues.
        "--without-mingle",
        "--without-gossip",
    ]
    with process_group(command, tmp_path, environment, log) as process:
        worker = WorkerProcess(process, node, log)
        if ready:
            wait_until_ready(app, worker)
        yield worker


def wait_until_ready(app: ProjectCelery, worker: WorkerProcess) -> None:
    """Block until the worker answers a ping; fail with its log if it cannot start."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not worker.alive:
            raise AssertionError(f"worker exited at start-up:\n{worker.output()}")
        if app.control.ping(destination=[worker.node], timeout=0.5):
            return
    raise AssertionError(f"worker not ready after {START_TIMEOUT}s:\n{worker.output()}")


def eventually(check: Callable[[], bool], timeout: float, message: str) -> None:
    """Poll ``check`` until it holds; fail with ``message`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.1)


def recorded(app: ProjectCelery, key: str) -> int:
    """How many times the ledger holds a side effect with this key."""
    return sum(entry.get("key") == key for entry in app.provider.get().ledger.entries())


def queued(app: ProjectCelery, queue: str = DEFAULT_QUEUE) -> int:
    """Messages waiting in a queue on the broker (0 for a missing one: Redis keeps no
    empty lists)."""
    with app.connection_for_read() as connection:
        return queue_depth(connection, queue)


def dead_lettered(app: ProjectCelery) -> list[str | None]:
    """Task ids of the messages in the dead-letter queue (RabbitMQ), consuming them."""
    ids = []
    with app.connection_for_read() as connection:
        queue = dead_letter_queue()(connection.default_channel)
        while (message := queue.get(no_ack=True)) is not None:
            ids.append(message.headers.get("id"))
    return ids


def final_states(app: ProjectCelery, task_ids: list[str], timeout: float) -> dict[str, str]:
    """The final state of each task, read in bulk; TimeoutError if some never finish."""
    states = finished_states(app, task_ids, timeout)
    if missing := set(task_ids) - set(states):
        raise ResultTimeout(f"{len(missing)} tasks never finished, e.g. {sorted(missing)[0]}")
    return states


def finished_states(app: ProjectCelery, task_ids: list[str], timeout: float) -> dict[str, str]:
    """The final state of each task that reaches one within ``timeout``; not the others."""
    backend = app.backend
    assert isinstance(backend, BaseKeyValueStoreBackend)  # the test profile's Redis
    states: dict[str, str] = {}
    with suppress(ResultTimeout):
        for task_id, meta in backend.get_many(task_ids, timeout=timeout, interval=0.2):
            states[task_id] = meta["status"]
    return states
{%- if cookiecutter.broker == "redis" %}


def held_by_redis(app: ProjectCelery, task_ids: list[str]) -> set[str]:
    """Which of these tasks Redis still holds: waiting in a queue, or handed out and
    recorded as unacknowledged (kombu's ``unacked`` hash, which the visibility timeout
    and ``reconnect.py`` requeue from). A task in neither can never be delivered."""
    with app.connection_for_read() as connection:
        channel: Any = connection.default_channel  # kombu's Redis channel: its client, keys
        client = channel.client
        raw = [item for key in client.scan_iter(_type="LIST") for item in client.lrange(key, 0, -1)]
        messages = [json.loads(item) for item in raw]
        messages += [json.loads(item)[0] for item in client.hvals(channel.unacked_key)]
    return set(task_ids) & {message.get("headers", {}).get("id") for message in messages}
{%- endif %}
