"""The delivery files of each rendered project pass the linters and schemas that CI
and container builds rely on, checked offline."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from ..conftest import Project

TOOLS = Path(sys.executable).parent  # the template's own environment


def run_tool(project: Project, *command: str) -> subprocess.CompletedProcess[str]:
    """Run one of the template's tools in the project; return its result."""
    return subprocess.run(
        [str(TOOLS / command[0]), *command[1:]],
        cwd=project.path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_hadolint_reports_nothing(rendered: Project) -> None:
    result = run_tool(rendered, "hadolint", "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_dependabot_and_compose_match_their_schemas(rendered: Project) -> None:
    for schema, path in [
        ("vendor.github-workflows", ".github/workflows/ci.yml"),
        ("vendor.github-workflows", ".github/workflows/release.yml"),
        ("vendor.dependabot", ".github/dependabot.yml"),
        ("vendor.compose-spec", "compose.yaml"),
    ]:
        result = run_tool(rendered, "check-jsonschema", "--builtin-schema", schema, path)
        assert result.returncode == 0, f"{path}: {result.stdout}{result.stderr}"


def test_zizmor_finds_no_workflow_issue(rendered: Project) -> None:
    result = run_tool(rendered, "zizmor", "--offline", ".github")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


def test_zizmor_checks_the_release_workflow(rendered: Project) -> None:
    result = run_tool(rendered, "zizmor", "--offline", ".github/workflows/release.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


def test_release_workflow_publishes_tags_with_least_privilege(rendered: Project) -> None:
    workflow = yaml.safe_load((rendered.path / ".github/workflows/release.yml").read_text())
    assert workflow[True] == {"push": {"tags": ["v*"]}}  # YAML 1.1 reads the key `on` as True
    assert workflow["permissions"] == {}
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "read", "packages": "write"}
    for step in job["steps"]:
        if "uses" in step:  # pinned by full commit SHA, as in ci.yml
            assert re.fullmatch(r"[\w./-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
    assert "docker push" in job["steps"][-1]["run"]


def test_actions_expressions_survive_rendering(rendered: Project) -> None:
    workflow = (rendered.path / ".github/workflows/ci.yml").read_text()
    assert "${{ matrix.python }}" in workflow
    assert "group: ${{ github.workflow }}-${{ github.ref }}" in workflow


def test_the_test_matrix_covers_the_supported_pythons(rendered: Project) -> None:
    minimum = rendered.combination.python_version
    expected = [v for v in ("3.11", "3.12", "3.13") if int(v[2:]) >= int(minimum[2:])]
    workflow = (rendered.path / ".github/workflows/ci.yml").read_text()
    assert "python: [" + ", ".join(f'"{v}"' for v in expected) + "]" in workflow
    tox = (rendered.path / "tox.ini").read_text()
    assert "env_list = lint, type, " + ", ".join(f"py{v.replace('.', '')}" for v in expected) in tox
