"""cruft records where a project came from, and brings a later template change into it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ..matrix import TEMPLATE

CRUFT = str(Path(sys.executable).parent / "cruft")


def git(cwd: Path, *args: str) -> None:
    """Run git quietly with a fixed identity."""
    identity = ["-c", "user.name=Template Test", "-c", "user.email=test@example.com"]
    subprocess.run(["git", *identity, *args], cwd=cwd, check=True, capture_output=True)


def test_cruft_update_applies_a_template_change(tmp_path: Path) -> None:
    template = tmp_path / "template"
    subprocess.run(["git", "clone", "--quiet", str(TEMPLATE), str(template)], check=True)
    projects = tmp_path / "projects"
    subprocess.run(
        [
            CRUFT,
            "create",
            "--no-input",
            "--output-dir",
            str(projects),
            str(template),
            "--extra-context",
            json.dumps({"project_name": "updated-later"}),
        ],
        check=True,
        capture_output=True,
    )
    project = projects / "updated-later"
    recorded = json.loads((project / ".cruft.json").read_text())
    assert recorded["template"] == str(template)
    git(project, "init", "--quiet")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "-m", "generated")

    readme = template / "{{cookiecutter.project_slug}}" / "README.md"
    readme.write_text(readme.read_text() + "\nA line the template gained later.\n")
    git(template, "commit", "--quiet", "-am", "template change")

    update = subprocess.run(
        [CRUFT, "update", "--skip-apply-ask", "--project-dir", str(project)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert update.returncode == 0, update.stdout + update.stderr
    assert "A line the template gained later." in (project / "README.md").read_text()
    assert json.loads((project / ".cruft.json").read_text())["commit"] != recorded["commit"]
