"""Bad answers are rejected with one clear line each, and nothing is left on disk."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from ..conftest import Project
from ..matrix import TEMPLATE


def load_hook(name: str) -> ModuleType:
    """Import a hook file as a module (its Jinja sits inside one string literal)."""
    spec = importlib.util.spec_from_file_location(name, TEMPLATE / "hooks" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pre_gen = load_hook("pre_gen_project")

VALID = {
    "project_slug": "acme-jobs",
    "package_name": "acme_jobs",
    "author_email": "jane@example.com",
    "version": "0.1.0",
    "python_version": "3.12",
}

REJECTIONS = [
    pytest.param("project_slug", "Acme Jobs", "lowercase letters and digits", id="slug-spaces"),
    pytest.param("project_slug", "acme--jobs", "single dashes", id="slug-double-dash"),
    pytest.param("project_slug", "1acme", "starting with a letter", id="slug-digit-first"),
    pytest.param("package_name", "acme-jobs", "Python identifier", id="package-dash"),
    pytest.param("package_name", "class", "Python keyword", id="package-keyword"),
    pytest.param("package_name", "typing", "standard-library module", id="package-stdlib"),
    pytest.param("package_name", "celery", "module the generated project", id="package-celery"),
    pytest.param("package_name", "redis", "module the generated project", id="package-redis"),
    pytest.param("package_name", "tests", "module the generated project", id="package-tests"),
    pytest.param("package_name", "app", "would claim APP_ENV", id="package-app-env"),
    pytest.param("package_name", "rabbitmq", "would claim RABBITMQ_", id="package-rabbitmq"),
    pytest.param("package_name", "flower", "would claim FLOWER_BASIC_AUTH", id="package-flower"),
    pytest.param("author_email", "jane.example.com", "not an e-mail", id="email-no-at"),
    pytest.param("version", "one", "release version", id="version-words"),
    pytest.param("python_version", "3.9", "must be one of 3.11, 3.12, 3.13", id="python-old"),
]


def test_valid_answers_pass() -> None:
    assert pre_gen.find_problems(VALID) == []


@pytest.mark.parametrize(("option", "value", "rule"), REJECTIONS)
def test_each_rule_names_option_value_rule_and_example(option: str, value: str, rule: str) -> None:
    (line,) = pre_gen.find_problems({**VALID, option: value})
    assert line.startswith(f"{option}={value!r}: ")
    assert rule in line
    assert "(for example: " in line


def test_every_problem_is_reported_at_once() -> None:
    problems = pre_gen.find_problems({**VALID, "project_slug": "A", "author_email": "x"})
    assert [line.split("=")[0] for line in problems] == ["project_slug", "author_email"]


CLI_REJECTIONS = [
    pytest.param({"project_slug": "Bad Slug"}, "project_slug='Bad Slug'", id="slug"),
    pytest.param({"package_name": "celery"}, "package_name='celery'", id="package-shadows"),
    pytest.param({"package_name": "import"}, "package_name='import'", id="package-keyword"),
    pytest.param({"author_email": "nobody"}, "author_email='nobody'", id="email"),
    pytest.param({"python_version": "3.10"}, "python_version='3.10'", id="python"),
    pytest.param({"project_slug": 'quote"d'}, "project_slug='quote\"d'", id="quote-in-answer"),
]


@pytest.mark.parametrize(("answers", "expected"), CLI_REJECTIONS)
def test_cookiecutter_stops_with_the_message_and_leaves_nothing(
    tmp_path: Path, answers: dict[str, str], expected: str
) -> None:
    output = tmp_path / "out"
    output.mkdir()
    command = [sys.executable, "-m", "cookiecutter", "--no-input", str(TEMPLATE), "-o", str(output)]
    command += [f"{key}={value}" for key, value in answers.items()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert f"ERROR: {expected}" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(output.iterdir()) == []


def test_every_unprefixed_env_example_variable_is_guarded(rendered: Project) -> None:
    text = (rendered.path / ".env.example").read_text()
    names = {
        line.split("=", 1)[0]
        for line in text.splitlines()
        if line and not line.startswith("#") and not line.startswith(f"{rendered.package.upper()}_")
    }
    assert names
    assert names <= set(pre_gen.UNPREFIXED_VARIABLES)
