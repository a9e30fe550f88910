"""The generated image, built and run for real on this machine's Docker engine.

Nothing is pulled: the base images are local stand-ins (see ``standins.py``) and the
Dockerfile is built without its ``# syntax=`` line, which would fetch BuildKit's
frontend image from a registry; both facts are reported as warnings in the test
output. The engine runs without a bridge network (``.ci/run``), so every container
uses the host network and every connection stays on loopback.

Each render's image runs as its non-root user: ``--help``, ``config``, and a worker
and beat on the local profile writing only to data_dir. Then the compose services
(a worker per queue, beat, API) run in the production profile against a private Redis (with a
password, on its own loopback port) and, for RabbitMQ, a private vhost and user on the
machine's RabbitMQ: no queue is shared with another test, so no broker lock is needed.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml

from ..conftest import Project, machine_lock
from . import standins

BUILD_TIMEOUT = 600
UID = "10001"


class LocalStandIn(UserWarning):
    """The image was built from local stand-ins, not the official base images."""


def unavailable(reason: str) -> NoReturn:
    """Fail under CI=true (where .ci/run starts the engine), skip elsewhere, saying why."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true requires it (.ci/run installs and starts it)")
    pytest.skip(f"{reason} (CI=true makes this a failure)")


@pytest.fixture(scope="session")
def docker() -> str:
    """Debian's docker client ($DOCKER overrides it), once an engine answers."""
    client = os.environ.get("DOCKER") or shutil.which("docker", path="/usr/bin")
    if client is None:
        unavailable("no docker client (apt-get install docker.io)")
    version = [client, "version", "--format", "{{.Server.Version}}"]
    engine = subprocess.run(version, capture_output=True, text=True, timeout=60)
    if engine.returncode != 0:
        reason = (engine.stderr.strip().splitlines() or ["docker version failed"])[0]
        unavailable(f"no Docker engine answers ({reason})")
    return str(client)


@pytest.fixture(scope="session")
def compose_tool() -> str:
    """The Compose tool Debian ships (docker-compose); $DOCKER_COMPOSE overrides it."""
    tool = os.environ.get("DOCKER_COMPOSE") or shutil.which("docker-compose")
    if tool is None:
        unavailable("no docker-compose (apt-get install docker-compose)")
    return str(tool)


@dataclass(frozen=True)
class Image:
    """A project's image, tagged as its compose file names it."""

    project: Project
    docker: str
    tag: str

    def docker_run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the docker client; fail the test with its output if it fails."""
        return run([self.docker, *args], timeout)


def run(command: list[str], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command; fail the test with its output if it fails."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} (exit {result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return result


@pytest.fixture(scope="session")
def image(installed: Project, docker: str, tmp_path_factory: pytest.TempPathFactory) -> Image:
    """The project's image, built from its Dockerfile on local base images."""
    dockerfile = installed.path / "Dockerfile"
    shipped = dockerfile.read_text()
    assert shipped.startswith("# syntax=docker/dockerfile:1\n")
    copy = tmp_path_factory.mktemp("dockerfile") / "Dockerfile"
    copy.write_text(shipped.removeprefix("# syntax=docker/dockerfile:1\n"))
    tag = f"{installed.combination.slug}:local"
    with machine_lock("docker"):
        started = time.monotonic()
        notes = standins.ensure(docker, standins.BaseImages.named_in(dockerfile))
        bases = time.monotonic() - started
        run(
            [docker, "build", "--network", "host", "--file", str(copy), "--tag", tag, "."],
            BUILD_TIMEOUT,
            cwd=installed.path,
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
        )
        built = time.monotonic() - started - bases
    warnings.warn(
        LocalStandIn(
            f"{installed.combination.id}: built in {built:.0f} s (bases ready in {bases:.0f} s)"
            " from a copy of the Dockerfile without its '# syntax=' line (BuildKit would fetch"
            " that frontend from a registry); " + "; ".join(notes)
        ),
        stacklevel=1,
    )
    return Image(installed, docker, tag)


def test_image_runs_as_its_non_root_user_writing_only_data_dir(image: Image) -> None:
    slug = image.project.combination.slug
    assert (
        image.docker_run("run", "--rm", "--entrypoint", "id", image.tag, "-u").stdout.strip() == UID
    )
    assert "worker" in image.docker_run("run", "--rm", image.tag, "--help").stdout
    shown = image.docker_run("run", "--rm", image.tag, "config", "--json", "--profile", "local")
    assert json.loads(shown.stdout)["data_dir"] == {"value": "/app/data", "source": "environment"}
    # The local profile writes its broker, results, thumbnails and beat's schedule:
    # all of it must land in data_dir, the one folder the user owns.
    name = f"ct-local-{slug}"
    run_local = ["run", "--detach", "--env", "APP_ENV=local"]  # no server, no network
    with machine_lock("docker"), container_cleanup(image, f"{name}-worker", f"{name}-beat"):
        image.docker_run(*run_local, "--name", f"{name}-worker", image.tag, "worker")
        image.docker_run(*run_local, "--name", f"{name}-beat", image.tag, "beat")
        submit = ["exec", f"{name}-worker", slug, "submit", "--wait", "--timeout", "60"]
        done = image.docker_run(*submit, "process_data", "--json", '{"value": 7, "label": "c"}')
        assert json.loads(done.stdout) == {"message": "Processed: 7 - c"}
        thumb = '{"source_id": "s1", "width": 4, "height": 4}'
        written = json.loads(image.docker_run(*submit, "render_thumbnail", "--json", thumb).stdout)
        assert written["path"] == "/app/data/thumbnails/s1-4x4.thumb"
        image.docker_run("exec", f"{name}-worker", *healthcheck(image))
        wait_for_schedule(image, f"{name}-beat")
        for role in ("worker", "beat"):
            state = inspect(image, f"{name}-{role}", "{{.State.Running}} {{.State.ExitCode}}")
            assert state == "true 0", image.docker_run("logs", f"{name}-{role}").stderr


def healthcheck(image: Image) -> list[str]:
    """The image's HEALTHCHECK command, to run it with docker exec."""
    test = json.loads(inspect(image, image.tag, "{{json .Config.Healthcheck.Test}}"))
    assert test[0] == "CMD", test
    return list(test[1:])


def inspect(image: Image, thing: str, template: str) -> str:
    """One field of a container or image."""
    return image.docker_run("inspect", "--format", template, thing).stdout.strip()


def wait_for_schedule(image: Image, container: str) -> None:
    """beat writes its schedule file (shelve adds a suffix on some dbm backends)."""
    probe = "import glob; print(glob.glob('/app/data/celerybeat-schedule*'))"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = image.docker_run("exec", container, "python", "-c", probe).stdout
        if "celerybeat-schedule" in found:
            return
        time.sleep(0.5)
    pytest.fail(f"beat wrote no schedule under /app/data:\n{docker_logs(image, container)}")


def wait_for_lock(image: Image, container: str) -> None:
    """beat on Redis (RedBeat) keeps no file: it logs once it holds the sending lock."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        logs = docker_logs(image, container)
        if "beat: Acquired lock" in logs:
            return
        time.sleep(0.5)
    pytest.fail(f"beat never took its lock in Redis:\n{docker_logs(image, container)}")


def docker_logs(image: Image, container: str) -> str:
    """A container's output, for a failure message."""
    logs = subprocess.run(
        [image.docker, "logs", "--tail", "60", container], capture_output=True, text=True
    )
    return logs.stdout + logs.stderr


@contextmanager
def container_cleanup(image: Image, *names: str) -> Iterator[None]:
    """Remove these containers afterwards, whatever happened."""
    subprocess.run([image.docker, "rm", "--force", *names], capture_output=True, check=False)
    try:
        yield
    finally:
        subprocess.run([image.docker, "rm", "--force", *names], capture_output=True, check=False)


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def free_port_run(length: int) -> int:
    """The first of ``length`` consecutive loopback ports nobody listens on now (each
    queue's worker serves metrics on metrics.port plus the queue's place)."""
    while True:
        first = free_port()
        with ExitStack() as probes:
            try:
                for port in range(first, first + length):
                    probes.enter_context(socket.socket()).bind(("127.0.0.1", port))
            except OSError:
                continue
            return first


@contextmanager
def private_redis(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """A Redis of our own on a loopback port, with a password as production demands.

    The machine's Redis has none, and Redis refuses AUTH <password> then.
    """
    port, password = free_port(), secrets.token_hex(16)
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--requirepass", password,
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        ping = ["redis-cli", "-p", str(port), "--no-auth-warning", "-a", password, "ping"]
        deadline = time.monotonic() + 20
        while subprocess.run(ping, capture_output=True, text=True).stdout.strip() != "PONG":
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail(f"the private redis-server on port {port} did not start")
            time.sleep(0.2)
        yield port, password
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextmanager
def private_vhost(name: str) -> Iterator[tuple[str, str]]:
    """A vhost and user of our own on the machine's RabbitMQ, deleted afterwards."""
    user, password = name, secrets.token_hex(16)
    ctl = ["rabbitmqctl", "--quiet"]
    subprocess.run([*ctl, "delete_user", user], capture_output=True, check=False)
    subprocess.run([*ctl, "delete_vhost", name], capture_output=True, check=False)
    try:
        run([*ctl, "add_vhost", name], 60)
        run([*ctl, "add_user", user, password], 60)
        run([*ctl, "set_permissions", "-p", name, user, ".*", ".*", ".*"], 60)
        yield user, password
    finally:
        subprocess.run([*ctl, "delete_user", user], capture_output=True, check=False)
        subprocess.run([*ctl, "delete_vhost", name], capture_output=True, check=False)


@dataclass
class Stack:
    """The compose services of a project, started on the host network."""

    image: Image
    command: list[str]
    api: str | None
    api_key: str

    def container(self, service: str) -> str:
        """The container id of a service."""
        return run([*self.command, "ps", "-q", service], 60).stdout.strip()

    def logs(self) -> str:
        """Every service's recent output, for a failure message."""
        result = subprocess.run(
            [*self.command, "logs", "--no-color", "--tail", "40"], capture_output=True, text=True
        )
        return result.stdout + result.stderr

    def submit(self, task: str, body: dict[str, Any]) -> str:
        """Enqueue a task through the API (or the CLI in the worker when there is none)."""
        if self.api:
            accepted: dict[str, str] = self.request("POST", f"/tasks/{task}", body)
            return accepted["task_id"]
        command = ["exec", self.container("worker-default"), self.slug, "submit", task, "--json"]
        return self.image.docker_run(*command, json.dumps(body)).stdout.strip()

    def status(self, task_id: str) -> dict[str, Any]:
        """A task's state, through the API (or the CLI in the beat container)."""
        if self.api:
            answer: dict[str, Any] = self.request("GET", f"/tasks/{task_id}")
            return answer
        command = ["exec", self.container("beat"), self.slug, "status", task_id]
        return dict(json.loads(self.image.docker_run(*command).stdout))

    @property
    def slug(self) -> str:
        """The project's command."""
        return self.image.project.combination.slug

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call the API with its key; the decoded JSON answer."""
        assert self.api is not None
        assert self.api.startswith("http://127.0.0.1:")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 (a loopback http URL, checked above)
            self.api + path,
            data=data,
            method=method,
            headers={"X-API-Key": self.api_key, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read())


@pytest.fixture
def stack(image: Image, compose_tool: str, tmp_path: Path) -> Iterator[Stack]:
    """The workers, beat and the API of compose.yaml in the production profile, on private
    broker and result stores, with the compose service names mapped to 127.0.0.1."""
    combination = image.project.combination
    prefix = combination.slug.replace("-", "_").upper() + "_"
    name = "ct" + combination.slug.replace("-", "")
    with machine_lock("docker"), private_redis(tmp_path) as (redis_port, redis_password):
        env = {"REDIS_PASSWORD": redis_password, "API_KEY": secrets.token_hex(16)}
        overrides = {
            f"{prefix}RESULTS__URL": f"redis://redis:{redis_port}/1",
            f"{prefix}BROKER__URL": f"redis://redis:{redis_port}/0",
            # Host network: the production metrics ports may be taken on this machine.
            f"{prefix}METRICS__HOST": "127.0.0.1",
            f"{prefix}METRICS__PORT": str(free_port_run(2)),
        }
        with broker_account(combination.broker, name) as (user, password):
            if combination.broker == "rabbitmq":
                env |= {"RABBITMQ_USER": user, "RABBITMQ_PASSWORD": password}
                overrides[f"{prefix}BROKER__URL"] = f"amqp://rabbitmq:5672/{name}"
            services = ["worker-default", "worker-cpu", "beat"]
            api = None
            if combination.include_api:
                port = free_port()
                overrides |= {f"{prefix}API__HOST": "127.0.0.1", f"{prefix}API__PORT": str(port)}
                services.append("api")
                api = f"http://127.0.0.1:{port}"
            command = compose_command(image, compose_tool, name, tmp_path, env, overrides, services)
            stack = Stack(image, command, api, env["API_KEY"])
            try:
                run([*command, "up", "--detach", "--no-deps", "--no-build", *services], 300)
                yield stack
            finally:
                subprocess.run(
                    [*command, "down", "--volumes", "--timeout", "30"], capture_output=True
                )


@contextmanager
def broker_account(broker: str, name: str) -> Iterator[tuple[str, str]]:
    """RabbitMQ: a private vhost and user; Redis: nothing (the private Redis is the broker)."""
    if broker == "rabbitmq":
        with private_vhost(name) as account:
            yield account
    else:
        yield "", ""


def compose_command(
    image: Image,
    compose_tool: str,
    name: str,
    tmp_path: Path,
    env: dict[str, str],
    overrides: dict[str, str],
    services: list[str],
) -> list[str]:
    """docker-compose on the project's compose.yaml as resolved with .env.example and real
    secrets, its services moved to the host network (no bridge here; docker-compose 1.29
    has no override that removes published ports, so the resolved file is edited)."""
    example = (image.project.path / ".env.example").read_text().splitlines()
    lines = [line for line in example if line.split("=", 1)[0] not in env]
    env_file = tmp_path / "compose.env"
    env_file.write_text("\n".join([*lines, *(f"{k}={v}" for k, v in env.items())]))
    project = ["--env-file", str(env_file), "--file", str(image.project.path / "compose.yaml")]
    resolved = yaml.safe_load(run([compose_tool, *project, "config"], 60).stdout)
    for service in services:
        definition = resolved["services"][service]
        definition.pop("ports", None)  # the host network publishes nothing
        definition["network_mode"] = "host"
        definition["extra_hosts"] = ["redis:127.0.0.1", "rabbitmq:127.0.0.1"]
        definition["environment"] |= overrides
    on_host = tmp_path / "compose.host.yaml"
    on_host.write_text(yaml.safe_dump(resolved))
    return [compose_tool, "--project-name", name, "--file", str(on_host)]


def test_compose_services_run_tasks_and_stop_gracefully(stack: Stack) -> None:
    image = stack.image
    worker, beat = stack.container("worker-cpu"), stack.container("beat")
    check = healthcheck(image)
    for service in ("worker-default", "worker-cpu", "beat", *(["api"] if stack.api else [])):
        container = stack.container(service)
        assert inspect(image, container, "{{.Config.User}}") == f"{UID}:{UID}"
        healthy = subprocess.run([image.docker, "exec", container, *check], capture_output=True)
        assert healthy.returncode == 0, f"{service}: {healthy.stdout!r}\n{stack.logs()}"
    wait_for_lock(image, beat)

    first = stack.submit("process_data", {"value": 3, "label": "container"})
    assert wait_for(stack, first, {"SUCCESS"})["result"] == {"message": "Processed: 3 - container"}

    grace = int(inspect(image, worker, "{{.Config.StopTimeout}}"))
    assert grace == 120, "compose's stop_grace_period: 2m"
    # SIGTERM mid-queue (the cpu queue's worker): the running task finishes, the queued
    # ones stay queued. Only the API submits fast enough to keep a queue ahead of the
    # worker; without it the worker is stopped idle.
    ids: list[str] = []
    if stack.api:
        thumb = {"width": 8, "height": 8, "passes": 1_000_000}
        ids = [stack.submit("render_thumbnail", {**thumb, "source_id": f"t{n}"}) for n in range(30)]
        wait_for(stack, ids[0], {"STARTED", "SUCCESS"})
    started = time.monotonic()
    image.docker_run("stop", worker, timeout=grace + 30)
    stopped = time.monotonic() - started
    assert stopped < grace, f"the worker took {stopped:.0f} s to stop"
    assert inspect(image, worker, "{{.State.ExitCode}}") == "0", stack.logs()
    if ids:
        states = [stack.status(task)["state"] for task in ids]
        assert "STARTED" not in states, f"a task was cut off: {states}\n{stack.logs()}"
        assert "SUCCESS" in states, states
        assert "PENDING" in states, f"the queue ran dry before the stop: {states}"
        # Isolation: the default queue's worker still serves while cpu has a backlog.
        other = stack.submit("process_data", {"value": 4, "label": "isolated"})
        assert wait_for(stack, other, {"SUCCESS"}, timeout=30)["result"] == {
            "message": "Processed: 4 - isolated"
        }
        image.docker_run("start", worker)
        for task in ids:
            wait_for(stack, task, {"SUCCESS"})


def wait_for(stack: Stack, task_id: str, states: set[str], timeout: float = 90) -> dict[str, Any]:
    """Poll a task until it reaches one of these states."""
    deadline = time.monotonic() + timeout
    while True:
        report = stack.status(task_id)
        if report["state"] in states:
            return report
        if time.monotonic() > deadline:
            pytest.fail(f"task {task_id} still {report['state']}:\n{stack.logs()}")
        time.sleep(0.1)


def test_compose_file_is_valid_and_guards_its_secrets(
    rendered: Project, compose_tool: str, tmp_path: Path
) -> None:
    compose = [compose_tool, "--file", str(rendered.path / "compose.yaml")]
    example = (rendered.path / ".env.example").read_text()
    (tmp_path / "full.env").write_text(example)
    shown = run([*compose, "--env-file", str(tmp_path / "full.env"), "config"], 60)
    config = yaml.safe_load(shown.stdout)
    services = config["services"]
    assert services["flower"]["environment"]["FLOWER_BASIC_AUTH"] == "admin:change-me"
    redis = services["redis"]
    assert redis["command"][-2:] == ["--appendonly", "yes"]
    # docker-compose 1.29 prints the short syntax.
    assert redis["volumes"] == ["redis-data:/data:rw"]
    # beat keeps its schedule and lock in Redis (RedBeat): no volume of its own.
    assert "volumes" not in services["beat"]
    assert "beat-data" not in config["volumes"]
    if rendered.combination.broker == "rabbitmq":
        assert services["rabbitmq"]["ports"] == ["127.0.0.1:15672:15672/tcp"]
        assert services["rabbitmq"]["volumes"] == ["rabbitmq-data:/var/lib/rabbitmq:rw"]
    # Monitoring: loopback ports, the shipped files mounted read-only, data on volumes.
    prometheus, grafana = services["prometheus"], services["grafana"]
    assert prometheus["ports"] == ["127.0.0.1:9090:9090/tcp"]
    assert grafana["ports"] == ["127.0.0.1:3000:3000/tcp"]
    mounts = {
        volume.split(":")[1]: volume.split(":")[0]
        for volume in prometheus["volumes"] + grafana["volumes"]
    }
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    for target, source in [
        ("/etc/prometheus", "deploy/prometheus"),
        ("/etc/grafana/provisioning", "deploy/grafana/provisioning"),
        ("/var/lib/grafana/dashboards", "deploy/grafana/dashboards"),
    ]:
        assert mounts[target] == str(rendered.path / source), target
        assert f"{mounts[target]}:{target}:ro" in prometheus["volumes"] + grafana["volumes"]
    assert mounts["/prometheus"] == "prometheus-data"
    assert mounts["/var/lib/grafana"] == "grafana-data"
    # The placeholder of .env.example, passed through from GRAFANA_ADMIN_PASSWORD.
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "change-me"  # noqa: S105
    for variable in ("FLOWER_BASIC_AUTH", "REDIS_PASSWORD", "GRAFANA_ADMIN_PASSWORD"):
        without = [line for line in example.splitlines() if not line.startswith(variable + "=")]
        (tmp_path / "partial.env").write_text("\n".join(without))
        refused = subprocess.run(
            [*compose, "--env-file", str(tmp_path / "partial.env"), "config"],
            capture_output=True,
            text=True,
        )
        assert refused.returncode != 0
        assert f"set {variable}" in refused.stderr
