"""Each rendered project passes its own quality gates, with its own tools.

The project's pytest includes its integration tests: they run against the real
Redis or RabbitMQ of this machine, and under CI=true fail rather than skip.
"""

from __future__ import annotations

import pytest

from ..conftest import Project


def test_lockfile_is_created(installed: Project) -> None:
    assert (installed.path / "uv.lock").is_file()


def test_ruff(installed: Project) -> None:
    installed.run("uv", "run", "--frozen", "ruff", "check", ".")


def test_black(installed: Project) -> None:
    installed.run("uv", "run", "--frozen", "black", "--check", ".")


def test_mypy_strict(installed: Project) -> None:
    installed.run("uv", "run", "--frozen", "mypy")


@pytest.mark.usefixtures("broker_lock")
def test_pytest_with_integration(installed: Project) -> None:
    result = installed.run("uv", "run", "--frozen", "pytest", "-p", "no:cacheprovider", "-q")
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary
    assert "skipped" not in summary, summary


@pytest.mark.usefixtures("broker_lock")
def test_integration_tests_can_be_selected(installed: Project) -> None:
    # The round trips only: the full run above already ran the fault and load tests.
    quick = ["tests/unit", "tests/integration/test_broker_roundtrip.py"]
    result = installed.run(
        "uv",
        "run",
        "--frozen",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "-m",
        "integration",
        "--no-cov",
        *quick,
    )
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary
    assert " deselected" in summary
    assert "skipped" not in summary, summary


def test_console_script_help(installed: Project) -> None:
    result = installed.run("uv", "run", "--frozen", installed.combination.slug, "--help")
    for command in ("worker", "submit", "status", "config"):
        assert command in result.stdout
