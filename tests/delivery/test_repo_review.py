"""sp-repo-review (the Scientific Python development guide's checks) finds nothing in
a rendered project beyond the allow-list below, each entry with its reason."""

from __future__ import annotations

import json
import subprocess

from ..conftest import Project, tool_env

ALLOWED = {
    # README and CONTRIBUTING are the documentation; there is no docs/ site to build.
    "PY004": "Has docs folder",
    # The pre-commit hooks are local on purpose: they run offline from the project's
    # own environment (README, .pre-commit-config.yaml), so no hook repository URLs.
    "PC100": "Has pre-commit-hooks",
    "PC110": "Uses black or ruff-format",
    "PC140": "Uses a type checker",
    "PC160": "Uses a spell checker",
    "PC170": "Uses PyGrep hooks",
    "PC180": "Uses a markdown formatter",
    "PC190": "Uses a linter",
    # pre-commit.ci cannot run local system hooks, so its settings would be dead.
    "PC901": "Custom pre-commit CI update message",
    "PC902": "Custom pre-commit CI autofix message",
    "PC903": "Specified pre-commit CI schedule",
    # zizmor checks the workflows in the template's own tests, offline.
    "SEC001": "Use zizmor to check the GitHub Actions",
}


def test_repo_review_reports_only_allowed_findings(rendered: Project) -> None:
    result = subprocess.run(
        ["uvx", "--quiet", "--from", "sp-repo-review[cli]", "repo-review", ".", "--format", "json"],
        cwd=rendered.path,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    checks = json.loads(result.stdout)["checks"]
    failed = {name for name, check in checks.items() if check["result"] is False}
    assert sorted(failed - ALLOWED.keys()) == []
