"""Configuration as the command line meets it: .env from .env.example, one line per error."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import (
    app,
)
from {{ cookiecutter.package_name }}.config.settings import (
    ENV_PREFIX,
)

PROJECT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def invoke(*args: str) -> Any:
    """Run the CLI in-process (the autouse fixture made tmp_path the working directory)."""
    return runner.invoke(app, list(args))


def test_every_command_works_after_copying_env_example() -> None:
    shutil.copy(PROJECT / ".env.example", ".env")
    shown = invoke("config", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["profile"]["value"] == "local"
    listed = invoke("tasks")
    assert listed.exit_code == 0, listed.output
    assert "process_data" in listed.stdout
    submitted = invoke("submit", "process_data", "--json", '{"value": 1, "label": "a"}')
    assert submitted.exit_code == 0, submitted.output


def test_a_prefixed_typo_in_dotenv_is_one_clear_line() -> None:
    Path(".env").write_text(f"REDIS_PASSWORD=x\n{ENV_PREFIX}LOG__LEVLE=DEBUG\n")
    result = invoke("tasks")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: log.levle ({ENV_PREFIX}LOG__LEVLE, from .env): "
        "not a setting; check the spelling against the README's settings table\n"
    )


{% if cookiecutter.include_api -%}
def test_the_api_refuses_a_bad_periodic_entry_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = {"task": "process_data", "schedule": 60, "payload": {"value": "one", "label": "a"}}
    monkeypatch.setenv(f"{ENV_PREFIX}BEAT__SCHEDULE", json.dumps({"nightly": entry}))
    result = invoke("api")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: beat.schedule.nightly.payload (")
    assert result.stderr.endswith(
        "invalid input for process_data: value: Input should be a valid integer\n"
    )
    assert len(result.stderr.splitlines()) == 1


{% endif -%}
def test_uncommenting_env_example_changes_nothing() -> None:
    # .env.example says each line is commented out at its default: `KEY=` included. Not
    # the URLs (config/local.toml points them at the embedded broker) nor the sample schedule.
    shown_defaults = invoke("config", "--json")
    assert shown_defaults.exit_code == 0, shown_defaults.output
    example = (PROJECT / ".env.example").read_text().splitlines()
    uncommented = [
        line.removeprefix("# ")
        for line in example
        if line.startswith(f"# {ENV_PREFIX}") and not re.search(r"__URL=|BEAT__SCHEDULE=", line)
    ]
    assert len(uncommented) > 50
    Path(".env").write_text("\n".join(uncommented) + "\n")
    shown = invoke("config", "--json")
    assert shown.exit_code == 0, shown.output
    values = {key: row["value"] for key, row in json.loads(shown.stdout).items()}
    defaults = {key: row["value"] for key, row in json.loads(shown_defaults.stdout).items()}
    assert values == defaults


def test_a_bad_sentry_dsn_is_one_line_without_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}SENTRY__DSN", "s3cretkey@o1.ingest.sentry.io/42")
    result = invoke("config")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"error: sentry.dsn ({ENV_PREFIX}SENTRY__DSN, from environment): "
        "not a valid Sentry DSN (Unsupported scheme ''); "
    )
    assert result.stderr.count("\n") == 1
    assert "s3cretkey" not in result.output


def test_an_invalid_log_level_is_one_line_and_exit_2() -> None:
    Path(".env").write_text(f"{ENV_PREFIX}LOG__LEVEL=LOUD\n")
    result = invoke("config")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: log.level ({ENV_PREFIX}LOG__LEVEL, from .env): 'LOUD' is not a log level; "
        "use one of DEBUG, INFO, WARNING, ERROR, CRITICAL\n"
    )


def test_production_problems_are_one_error_line_each() -> None:
    result = invoke("config", "--profile", "production")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines
    assert all(line.startswith("error: ") and "): " in line for line in lines)
    assert f"error: broker.password ({ENV_PREFIX}BROKER__PASSWORD, default): " in result.stderr
    assert "pydantic" not in result.stderr


def test_dotenv_app_env_chooses_the_profile_and_the_option_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    Path(".env").write_text("APP_ENV=production\n")
    assert invoke("config").exit_code == 2  # production, refusing the local defaults
    assert invoke("config", "--profile", "local").exit_code == 0
    monkeypatch.setenv("APP_ENV", "local")
    assert invoke("config").exit_code == 0
