"""Every combination renders completely: no leftover Jinja, no files of unselected
options, answers visible where they belong."""

from __future__ import annotations

import re
import tomllib

from ..conftest import Project

# A variable or a tag left behind; plain "{{" or "}}" also occur in Python code.
JINJA = re.compile(r"\{\{-?\s*cookiecutter|\{%-?\s|\s-?%\}|\{#-?\s")
# GitHub Actions expressions are ${{ ... }}: they must survive rendering untouched.
ACTIONS_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")


def test_no_unrendered_jinja(rendered: Project) -> None:
    leftovers = []
    for relative, text in rendered.texts().items():
        text = ACTIONS_EXPRESSION.sub("", text)
        leftovers += [f"{relative}: {match}" for match in JINJA.findall(text)]
    assert leftovers == []


def test_names_follow_the_answers(rendered: Project) -> None:
    combination = rendered.combination
    assert rendered.path.name == combination.slug
    assert (rendered.path / "src" / rendered.package / "py.typed").is_file()
    pyproject = tomllib.loads((rendered.path / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == combination.slug
    assert pyproject["project"]["requires-python"] == f">={combination.python_version}"
    assert pyproject["project"]["scripts"] == {combination.slug: f"{rendered.package}.cli:main"}
    assert (rendered.path / ".python-version").read_text().strip() == combination.python_version


def test_api_files_follow_the_option(rendered: Project) -> None:
    api_paths = [
        rendered.path / "src" / rendered.package / "api",
        rendered.path / "tests" / "unit" / "test_api.py",
        rendered.path / "tests" / "property" / "test_api_schema.py",
        rendered.path / "tests" / "integration" / "test_api_roundtrip.py",
        rendered.path / "benchmarks" / "api_latency.py",
    ]
    dependencies = " ".join(
        tomllib.loads((rendered.path / "pyproject.toml").read_text())["project"]["dependencies"]
    )
    if rendered.combination.include_api:
        assert all(path.exists() for path in api_paths)
        assert "fastapi" in dependencies
    else:
        assert not any(path.exists() for path in api_paths)
        assert "fastapi" not in dependencies


def test_broker_follows_the_option(rendered: Project) -> None:
    settings = (rendered.path / "src" / rendered.package / "config" / "settings.py").read_text()
    scheme = {"redis": "redis://", "rabbitmq": "amqp://"}[rendered.combination.broker]
    assert f'url: str = "{scheme}' in settings


LICENSE_OPENINGS = {
    "MIT": "MIT License",
    "Apache-2.0": "Apache License",
    "BSD-3-Clause": "BSD 3-Clause License",
    "Proprietary": "Copyright (c)",
}


def test_license_text_matches(rendered: Project) -> None:
    opening = LICENSE_OPENINGS[rendered.combination.license]
    assert (rendered.path / "LICENSE").read_text().lstrip().startswith(opening)
