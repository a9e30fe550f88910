"""CONTRIBUTING's first commands, run literally in a freshly rendered project: they
succeed in order and leave uv.lock committed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from ..conftest import tool_env
from ..markdown import code_blocks, commands, section
from ..matrix import TEMPLATE

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Jane Doe",
    "GIT_AUTHOR_EMAIL": "jane@example.com",
    "GIT_COMMITTER_NAME": "Jane Doe",
    "GIT_COMMITTER_EMAIL": "jane@example.com",
}


def run(project: Path, command: str) -> subprocess.CompletedProcess[str]:
    """One documented command, through the shell as a reader would type it."""
    return subprocess.run(
        ["bash", "-c", command],
        cwd=project,
        env={**tool_env(), **GIT_IDENTITY},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_contributing_setup_commands_work_in_order_and_commit_the_lockfile(
    tmp_path: Path,
) -> None:
    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(tmp_path)))
    assert not (project / "uv.lock").exists()
    setup = section((project / "CONTRIBUTING.md").read_text(), "1. Set up")
    block = code_blocks(setup, "bash")[0]
    for line in block.splitlines():
        if line.strip():
            result = run(project, line)
            assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
    tracked = run(project, "git ls-files").stdout.split()
    assert "uv.lock" in tracked
    assert run(project, "git status --porcelain").stdout == ""
    # A teammate's clone: the lockfile is there, and `make install` holds to it.
    assert "make install" in commands(block)
    again = run(project, "make install")
    assert again.returncode == 0, again.stderr
    assert "uv sync --locked" in again.stdout
