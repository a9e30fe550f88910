"""The generated project's own delivery tooling works: pre-commit offline, tox with
tox-uv, and a wheel that installs and runs (the image: test_container.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..conftest import Project, tool_env
from ..matrix import OPTIONS


def test_pre_commit_passes_offline_in_a_fresh_repository(installed: Project) -> None:
    installed.run("git", "init", "--quiet")
    installed.run("git", "add", "--all")
    installed.run("uv", "run", "--frozen", "pre-commit", "run", "--all-files")


def test_tox_lint_type_and_the_newest_python(installed: Project) -> None:
    # The newest supported Python, not the one .python-version pins: tox must find
    # every interpreter the project claims, as CI's matrix does.
    newest = OPTIONS["_supported_python_versions"][-1]
    python_env = "py" + newest.replace(".", "")
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
