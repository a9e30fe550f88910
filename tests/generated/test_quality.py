"""Each rendered project passes its own quality gates, with its own tools.

The project's pytest includes its integration tests: they run against the real
Redis or RabbitMQ of this machine, and under CI=true fail rather than skip. Each
broker's full integration suite runs once, in its API render (integration_selection).
"""

from __future__ import annotations

import pytest

from ..conftest import Project
from ..matrix import TEMPLATE


def test_lockfile_is_created(installed: Project) -> None:
    assert (installed.path / "uv.lock").is_file()


def test_ruff(installed: Project) -> None:
    installed.run("uv", "run", "--frozen", "ruff", "check", ".")


def test_black(installed: Project) -> None:
    installed.run("uv", "run", "--frozen", "black", "--check", ".")


def test_mypy_strict(installed: Project) -> None:
    installed.run("uv", "run", "--frozen", "mypy")


def integration_selection(project: Project) -> list[str]:
    """What the project's full pytest run covers in this render.

    The API render runs every test. The render without the API runs its unit and
    property tests and only the integration modules whose source names the option (and
    the round trip): the others are the same files, run against the same worker code,
    in the API render of the same broker. This keeps each broker's integration suite to
    one run under its lock, which is most of the template suite's time.
    """
    if project.combination.include_api:
        return []
    source = TEMPLATE / "{{cookiecutter.project_slug}}" / "tests" / "integration"
    differing = sorted(
        f"tests/integration/{module.name}"
        for module in source.glob("test_*.py")
        if "cookiecutter.include_api" in module.read_text()
    )
    round_trip = "tests/integration/test_broker_roundtrip.py"
    return ["tests/unit", "tests/property", round_trip, *differing]


@pytest.mark.usefixtures("broker_lock")
def test_pytest_with_integration(installed: Project) -> None:
    selection = integration_selection(installed)
    result = installed.run(
        "uv", "run", "--frozen", "pytest", "-p", "no:cacheprovider", "-q", *selection
    )
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
