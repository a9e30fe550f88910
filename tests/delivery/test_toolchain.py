"""The generated project's own delivery tooling works: pre-commit offline, tox with
tox-uv, a wheel that installs and runs, and a container build where an engine exists."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ..conftest import Project, machine_lock, tool_env


def test_pre_commit_passes_offline_in_a_fresh_repository(installed: Project) -> None:
    installed.run("git", "init", "--quiet")
    installed.run("git", "add", "--all")
    installed.run("uv", "run", "--frozen", "pre-commit", "run", "--all-files")


def test_tox_lint_type_and_the_target_python(installed: Project) -> None:
    python_env = "py" + installed.combination.python_version.replace(".", "")
    result = installed.run("uv", "run", "--frozen", "tox", "-e", f"lint,type,{python_env}")
    assert f"{python_env}: OK" in result.stdout


def test_wheel_installs_and_its_console_script_runs(installed: Project, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    installed.run("uv", "build", "--quiet", "--out-dir", str(dist))
    (wheel,) = dist.glob("*.whl")
    assert len(list(dist.glob("*.tar.gz"))) == 1
    venv = tmp_path / "venv"
    python = installed.combination.python_version
    installed.run("uv", "venv", "--quiet", "--python", python, str(venv))
    installed.run(
        "uv", "pip", "install", "--quiet", "--python", str(venv / "bin/python"), str(wheel)
    )
    script = str(venv / "bin" / installed.combination.slug)
    outside = subprocess.run(  # run away from the sources, so only the wheel can answer
        [script, "config", "--json"],
        cwd=tmp_path,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert outside.returncode == 0, outside.stderr
    assert '"broker.url"' in outside.stdout
    assert "worker" in installed.run(script, "--help").stdout


def docker_engine() -> str:
    """The docker client path, or skip saying why no build can run here."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker build not run: no docker client on this machine")
    engine = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=60)
    if engine.returncode != 0:
        reason = (engine.stderr.strip().splitlines() or ["docker info failed"])[-1]
        pytest.skip(f"docker build not run: no Docker engine answers ({reason})")
    return docker


def test_image_builds_and_compose_runs_a_task(installed: Project) -> None:
    docker = docker_engine()
    slug = installed.combination.slug
    installed.run(docker, "build", "--tag", f"{slug}:test", ".")
    shutil.copy(installed.path / ".env.example", installed.path / ".env")
    compose = [docker, "compose", "--project-name", slug.replace("-", "")]
    # Every compose project publishes the same host ports: one at a time.
    with machine_lock("docker"):
        compose_smoke_test(installed, compose, slug)


def compose_smoke_test(installed: Project, compose: list[str], slug: str) -> None:
    """Start the stack, submit a task through the worker container, tear down."""
    try:
        installed.run(*compose, "up", "--build", "--detach", "--wait")
        payload = '{"value": 1, "label": "smoke"}'
        result = installed.run(
            *compose,
            "exec",
            "-T",
            "worker",
            slug,
            "submit",
            "process_data",
            "--json",
            payload,
            "--wait",
            "--timeout",
            "60",
        )
        assert '"Processed: 1 - smoke"' in result.stdout
    finally:
        installed.run(*compose, "down", "--volumes", check=False)
