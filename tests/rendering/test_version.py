"""The version is written once, in pyproject.toml: bumping it there, as CONTRIBUTING's
release steps say, changes the package's ``__version__`` too."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from ..conftest import tool_env
from ..matrix import TEMPLATE


def uv(project: Path, *arguments: str) -> str:
    """Run uv in the project; fail with its output."""
    result = subprocess.run(
        ["uv", *arguments], cwd=project, env=tool_env(), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.slow
def test_bumping_pyproject_bumps_dunder_version(tmp_path: Path) -> None:
    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(tmp_path)))
    package = project / "src" / "acme_jobs"
    assert "0.1.0" not in (package / "__init__.py").read_text()
    uv(project, "sync", "--quiet")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"', 'version = "0.2.0"'))
    uv(project, "lock", "--quiet")  # `make lock`, as the release steps say
    printed = uv(
        project, "run", "--frozen", "python", "-c", "import acme_jobs as p; print(p.__version__)"
    )
    assert printed.strip() == "0.2.0"
