"""What the documentation says matches what the template does: commands that work as
pasted, and statements about the code that are true for every combination."""

from __future__ import annotations

import shutil
import subprocess
from itertools import pairwise
from pathlib import Path

from ..conftest import Project, tool_env
from ..markdown import code_blocks, commands, section
from ..matrix import OPTIONS, TEMPLATE


def documents(project: Project) -> dict[Path, str]:
    """Every Markdown file of the rendered project, by relative path."""
    return {
        relative: (project.path / relative).read_text()
        for relative in project.rendered_files
        if relative.suffix == ".md"
    }


def test_the_readme_states_its_tagline_once(rendered: Project) -> None:
    readme = (rendered.path / "README.md").read_text()
    opening = " ".join(OPTIONS["description"].split()[:3])  # "Background jobs on"
    assert readme.count(opening) == 1


def test_no_service_is_named_twice_in_a_row(rendered: Project) -> None:
    doubled = [
        f"{path}: {name} and {name}"
        for path, text in documents(rendered).items()
        for name in ("Redis", "RabbitMQ")
        if f"{name} and {name}" in " ".join(text.split())
    ]
    assert doubled == []


def test_every_heading_follows_a_blank_line(rendered: Project) -> None:
    """Outside code blocks; a heading glued to a paragraph renders as part of it."""
    glued = []
    for path, text in documents(rendered).items():
        fenced = False
        lines = text.splitlines()
        for before, line in pairwise(lines):
            fenced ^= before.lstrip().startswith("```")
            if not fenced and line.startswith("#") and before.strip():
                glued.append(f"{path}: {line}")
    assert glued == []


def test_api_routes_are_documented_as_the_api_serves_them(rendered: Project) -> None:
    """With the API, the README shows the absolute Location the API sends; without it,
    no file mentions its routes."""
    if not rendered.combination.include_api:
        mentions = [
            str(relative)
            for relative, text in rendered.texts().items()
            if any(route in text for route in ("/readyz", "/healthz"))
        ]
        assert mentions == []
        readme = (rendered.path / "README.md").read_text()
        assert "CLI and API" not in readme
        assert "the API and beat alike" not in readme
        return
    routes = rendered.path / "src" / rendered.package / "api" / "routes" / "tasks.py"
    code = routes.read_text()  # url_for builds an absolute URL from the request
    assert "url = str(request.url_for(STATUS_ROUTE" in code
    assert 'response.headers["Location"] = url' in code
    readme = (rendered.path / "README.md").read_text()
    assert "Location: http://localhost:8000/tasks/<id>" in readme
    assert "Location: /tasks/" not in readme


def test_the_template_readme_render_command_works_as_pasted(tmp_path: Path) -> None:
    """Run the quick start's render block in a copy of the checkout, answering every
    question with its default as a reader pressing Enter would."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("cookiecutter.json", "hooks", "scripts", "{{cookiecutter.project_slug}}"):
        source = TEMPLATE / name
        if source.is_dir():
            shutil.copytree(source, checkout / name)
        else:
            shutil.copy(source, checkout / name)
    quick_start = section((TEMPLATE / "README.md").read_text(), "Quick start")
    (render_block,) = [
        block for block in code_blocks(quick_start, "bash") if block.startswith("./scripts/render")
    ]
    for command in commands(render_block):
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=checkout,
            input="\n" * 20,
            env=tool_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    project = tmp_path / "acme-jobs"
    assert (project / "pyproject.toml").is_file()
    assert f"cd {project}" in result.stdout  # the next steps name where it landed
