"""Tracing and error reporting: off by default at no import cost, one line when the
tracing extra is missing, no task data in a Sentry event."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import SpanKind
from typer.testing import CliRunner

from {{ cookiecutter.package_name }} import tracing
from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config.settings import environment_variable
from {{ cookiecutter.package_name }}.error_reporting import without_task_data

# Prints the modules of tracing's and error reporting's packages imported once the app is
# built. Not opentelemetry as a whole: where the tracing extra is installed (as here),
# redis-py imports the OpenTelemetry metrics API and SDK itself, whatever our settings.
IMPORTED = """
import sys
from {{ cookiecutter.package_name }}.celery_app import create_app
from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import load_settings
create_app(load_settings("local", env_file=None))
ours = ("opentelemetry.sdk.trace", "opentelemetry.instrumentation", "opentelemetry.exporter",
        "sentry_sdk")
print(sorted(name for name in sys.modules if name.startswith(ours)))
"""


def test_off_by_default_nothing_optional_is_imported(tmp_path: Path) -> None:
    completed = subprocess.run(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-c", IMPORTED],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert completed.stdout.strip() == "[]"


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
    return result.decision is Decision.RECORD_AND_SAMPLE


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
