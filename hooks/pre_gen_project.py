"""Reject bad answers before cookiecutter writes the project.

Cookiecutter deletes the half-rendered output folder when this hook exits non-zero,
so every rejection leaves nothing behind. Each problem is one line that names the
option, the value, the rule and a value that would be accepted.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
from collections.abc import Iterable
from typing import Any

SUPPORTED_PYTHON_VERSIONS = ("3.11", "3.12", "3.13")

# Top-level modules of the generated project's own dependencies: a package with one
# of these names would shadow the dependency on import. stdlib names come from sys.
DEPENDENCY_MODULES = frozenset(
    {
        "amqp",
        "billiard",
        "black",
        "celery",
        "click",
        "dotenv",
        "fastapi",
        "httpx",
        "hypothesis",
        "kombu",
        "mypy",
        "pydantic",
        "pydantic_core",
        "pydantic_settings",
        "pytest",
        "pythonjsonlogger",
        "redis",
        "rich",
        "ruff",
        "starlette",
        "test",
        "tests",
        "typer",
        "typing_extensions",
        "uvicorn",
        "vine",
    }
)

SLUG_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
VERSION_PATTERN = re.compile(r"^\d+(\.\d+){1,2}((a|b|rc)\d+)?(\.dev\d+)?$")

# .env.example's variables without the settings prefix (<PACKAGE>_): the profile and
# compose.yaml's. The project reads every <PACKAGE>_* name in .env as a setting, so a
# package name whose prefix starts one of these would turn it into an unknown setting.
UNPREFIXED_VARIABLES = (
    "APP_ENV",
    "API_KEY",
    "FLOWER_BASIC_AUTH",
    "GRAFANA_ADMIN_PASSWORD",
    "RABBITMQ_PASSWORD",
    "RABBITMQ_USER",
    "REDIS_PASSWORD",
)


def problem(option: str, value: str, rule: str, example: str) -> str:
    """Format one rejection as a single line."""
    return f"{option}={value!r}: {rule} (for example: {example})"


def check_slug(slug: str) -> list[str]:
    """A slug is a normalised lowercase distribution name."""
    if SLUG_PATTERN.fullmatch(slug):
        return []
    return [
        problem(
            "project_slug",
            slug,
            "must be lowercase letters and digits separated by single dashes, "
            "starting with a letter",
            "acme-jobs",
        )
    ]


def check_package_name(name: str) -> list[str]:
    """A package name must import cleanly and shadow nothing it depends on."""
    example = "acme_jobs"
    if not name.isidentifier() or name != name.lower():
        rule = "must be a lowercase Python identifier (letters, digits, underscores)"
        return [problem("package_name", name, rule, example)]
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return [problem("package_name", name, "is a Python keyword", example)]
    if name in sys.stdlib_module_names:
        rule = "would shadow the standard-library module of the same name"
        return [problem("package_name", name, rule, example)]
    if name in DEPENDENCY_MODULES:
        rule = "would shadow a module the generated project depends on"
        return [problem("package_name", name, rule, example)]
    prefix = f"{name.upper()}_"
    clashes = [variable for variable in UNPREFIXED_VARIABLES if variable.startswith(prefix)]
    if clashes:
        rule = f"its settings prefix {prefix} would claim {clashes[0]} of .env.example"
        return [problem("package_name", name, rule, example)]
    return []


def check_email(email: str) -> list[str]:
    """The author e-mail goes into package metadata, so it must be an address."""
    if EMAIL_PATTERN.fullmatch(email):
        return []
    rule = "is not an e-mail address"
    return [problem("author_email", email, rule, "jane@example.com")]


def check_version(version: str) -> list[str]:
    """The first version must be a plain PEP 440 release."""
    if VERSION_PATTERN.fullmatch(version):
        return []
    rule = "is not a release version like MAJOR.MINOR.PATCH"
    return [problem("version", version, rule, "0.1.0")]


def check_python_version(version: str) -> list[str]:
    """Only versions the template tests are offered."""
    if version in SUPPORTED_PYTHON_VERSIONS:
        return []
    rule = f"must be one of {', '.join(SUPPORTED_PYTHON_VERSIONS)}"
    return [problem("python_version", version, rule, "3.12")]


def find_problems(answers: dict[str, Any]) -> list[str]:
    """Run every check and return all problems found, in option order."""
    return [
        *check_slug(answers["project_slug"]),
        *check_package_name(answers["package_name"]),
        *check_email(answers["author_email"]),
        *check_version(answers["version"]),
        *check_python_version(answers["python_version"]),
    ]


def report(problems: Iterable[str]) -> int:
    """Print problems to stderr; return the exit code."""
    lines = list(problems)
    for line in lines:
        print(f"ERROR: {line}", file=sys.stderr)
    if lines:
        print("Nothing was generated. Fix the answers above and run again.", file=sys.stderr)
    return 1 if lines else 0


def main() -> int:
    """Validate the answers cookiecutter rendered into this file."""
    # Compact JSON escapes quotes inside strings and ends with "}", so no answer
    # can close this raw string early.
    answers = json.loads(r"""{{ cookiecutter | tojson }}""")
    return report(find_problems(answers))


if __name__ == "__main__":
    sys.exit(main())
