"""Tracing and error reporting: off by default at no import cost, one line when the
tracing extra is missing, no task data in a Sentry event."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import SpanKind
from typer.testing import CliRunner

from {{ cookiecutter.package_name }} import tracing
from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config.settings import environment_variable
from {{ cookiecutter.package_name }}.error_reporting import without_task_data

# Prints which of tracing's and error reporting's packages are imported once the app is built.
IMPORTED = """
import sys
from {{ cookiecutter.package_name }}.celery_app import create_app
from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import load_settings
create_app(load_settings("local", env_file=None))
optional = {"opentelemetry", "sentry_sdk"}
print(sorted(optional & {name.partition(".")[0] for name in sys.modules}))
"""


def imported_after_start_up(tmp_path: Path, **environment: str) -> str:
    """Which optional packages a fresh process has imported once the app is built."""
    completed = subprocess.run(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-c", IMPORTED],
        cwd=tmp_path,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return completed.stdout.strip()


def test_off_by_default_nothing_optional_is_imported(tmp_path: Path) -> None:
    assert imported_after_start_up(tmp_path) == "[]"


def test_on_the_packages_are_imported_only_where_spans_are_made(tmp_path: Path) -> None:
    # Building the app checks the extra without importing it; start() imports it.
    on = {environment_variable("tracing.enabled"): "true"}
    assert imported_after_start_up(tmp_path, **on) == "['opentelemetry']"


def test_tracing_without_its_extra_is_one_line_naming_the_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tracing, "MODULES", (*tracing.MODULES, "opentelemetry_absent.trace"))
    monkeypatch.setenv(environment_variable("tracing.enabled"), "true")
    result = CliRunner().invoke(app, ["tasks"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: tracing.enabled (")
    assert "opentelemetry_absent.trace is missing" in lines[0]
    assert f"`{tracing.INSTALL}`" in lines[0]


def decision(ratio: float, kind: SpanKind, trace_id: int = 1) -> bool:
    """Whether the sampler records a new trace's first span of this kind."""
    result = tracing.sampler(ratio).should_sample(None, trace_id, "span", kind)
    return bool(result.decision.is_sampled())


def test_a_client_call_outside_any_trace_starts_none() -> None:
    assert not decision(1.0, SpanKind.CLIENT)  # the broker's own Redis commands
    assert decision(1.0, SpanKind.SERVER)
    assert decision(1.0, SpanKind.PRODUCER)
    assert not decision(0.0, SpanKind.PRODUCER)


def test_an_event_loses_task_arguments_and_request_bodies() -> None:
    event: Any = {
        "extra": {"celery-job": {"task_name": "t", "args": ["secret"], "kwargs": {"k": "secret"}}},
        "request": {"url": "/tasks/t", "data": {"body": "secret"}},
    }
    scrubbed = without_task_data(event, {})
    assert scrubbed["extra"]["celery-job"] == {"task_name": "t"}
    assert scrubbed["request"] == {"url": "/tasks/t"}
