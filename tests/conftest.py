"""Render each combination once per test session and share it between checks."""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from .matrix import TEMPLATE, Combination, matrix


@dataclass(frozen=True)
class Project:
    """A rendered project and the answers it was rendered with."""

    path: Path
    combination: Combination
    # The files as rendered, before any check installs or runs tools in the folder.
    rendered_files: tuple[Path, ...]

    def texts(self) -> dict[Path, str]:
        """Each rendered text file's content; binary files (the benchmark plot) are
        copied as they are, so there is nothing rendered in them to read."""
        texts = {}
        for relative in self.rendered_files:
            try:
                texts[relative] = (self.path / relative).read_text()
            except UnicodeDecodeError:
                continue
        return texts

    @property
    def package(self) -> str:
        """Its import package name."""
        return self.combination.slug.replace("-", "_")

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command in the project with its own tools; fail with the output."""
        result = subprocess.run(
            command, cwd=self.path, env=tool_env(), capture_output=True, text=True, timeout=900
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"{' '.join(command)} failed in {self.combination.id} "
                f"(exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result


def tool_env() -> dict[str, str]:
    """The environment for tools in rendered projects: no leaked virtualenv, no downloads.

    uv's cache is left where the caller put it (UV_CACHE_DIR or uv's default), so
    every rendered project shares one cache.
    """
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return env


def render(combination: Combination, output_dir: Path) -> Path:
    """Render one combination without prompting."""
    return Path(
        cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(output_dir),
            extra_context=combination.extra_context(),
        )
    )


# One xdist worker per broker: every render of a broker runs on the same worker, so its
# integration runs (serialized by broker_lock anyway) never leave another worker idle,
# waiting for the lock, while it has other checks it could run.
MATRIX = [pytest.param(c, id=c.id, marks=pytest.mark.xdist_group(c.broker)) for c in matrix()]


@pytest.fixture(scope="session", params=MATRIX)
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A freshly rendered project, not yet installed."""
    combination: Combination = request.param
    path = render(combination, tmp_path_factory.mktemp(combination.id))
    files = tuple(sorted(p.relative_to(path) for p in path.rglob("*") if p.is_file()))
    return Project(path, combination, files)


@contextmanager
def machine_lock(name: str) -> Iterator[None]:
    """Hold a machine-wide resource (a broker, the Docker engine) alone.

    The lock file is machine-wide, not per run: two template runs at once (two
    checkouts, or a developer's run beside CI) must not share a broker either.
    """
    path = Path(tempfile.gettempdir()) / f"cookiecutter-celery-production-{name}.lock"
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture
def broker_lock(rendered: Project) -> Iterator[None]:
    """Hold the broker of this project alone: projects share its queue names, so two
    test sessions at once would consume each other's tasks."""
    with machine_lock(rendered.combination.broker):
        yield


@pytest.fixture(scope="session")
def installed(rendered: Project) -> Project:
    """The rendered project after ``uv sync`` (which also writes uv.lock)."""
    rendered.run("uv", "sync", "--quiet")
    return rendered
