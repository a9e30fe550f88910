"""Structured task records and log formats."""

from __future__ import annotations

import json
import logging

import pytest
from celery.worker.consumer import consumer

from {{ cookiecutter.package_name }} import observability
from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
)
from {{ cookiecutter.package_name }}.config.settings import (
    LogSettings,
)
from {{ cookiecutter.package_name }}.observability import (
    configure_logging,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    process_data,
)


class SteppingClock:
    """A monotonic clock that advances 0.25 s each time it is read."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        """The time, then a quarter second later."""
        self.now += 0.25
        return self.now


def test_each_task_run_is_logged_with_its_numbers(
    local_app: ProjectCelery, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Started at one reading, finished at the next: 250 ms, not the 0.0 of a missed start.
    monkeypatch.setattr(observability, "time", SteppingClock())
    caplog.set_level(logging.INFO, logger=observability.logger.name)
    process_data.apply(args=(ProcessDataInput(value=1, label="a").model_dump(),), task_id="t-1")
    (record,) = [r for r in caplog.records if getattr(r, "task_id", None) == "t-1"]
    assert record.task_name == process_data.name  # type: ignore[attr-defined]
    assert record.state == "SUCCESS"  # type: ignore[attr-defined]
    assert record.retries == 0  # type: ignore[attr-defined]
    assert record.duration_ms == 250.0  # type: ignore[attr-defined]


def test_json_logs_are_one_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSettings(level="INFO", json_format=True))
    logging.getLogger("demo").info("hello", extra={"task_id": "t-2"})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert json.loads(line) | {"asctime": None} == {
        "asctime": None,
        "level": "INFO",
        "name": "demo",
        "message": "hello",
        "task_id": "t-2",
    }


@pytest.mark.parametrize(("level", "shown"), [("INFO", False), ("DEBUG", True)])
def test_celery_repeats_no_task_line_of_ours_unless_debugging(
    capsys: pytest.CaptureFixture[str], level: str, shown: bool
) -> None:
    configure_logging(LogSettings(level=level, json_format=False))
    for name in observability.CELERY_TASK_LINES:
        logging.getLogger(name).info("Task %s received", "t-3")
        logging.getLogger(name).error("Task %s failed", "t-4")
    logged = capsys.readouterr().err
    assert ("Task t-3 received" in logged) is shown
    assert logged.count("Task t-4 failed") == len(observability.CELERY_TASK_LINES)


def test_text_logs_are_readable(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSettings(level="WARNING", json_format=False))
    logging.getLogger("demo").warning("careful")
    assert "WARNING demo: careful" in capsys.readouterr().err


MARKER = "personal-7f3a"


@pytest.mark.parametrize(
    ("message", "values"),
    [
        ("INVALID_TASK_ERROR", ("error", MARKER)),
        ("UNKNOWN_FORMAT", (MARKER,)),
        ("MESSAGE_DECODE_ERROR", ("error", "application/x-custom", "binary", MARKER, MARKER)),
    ],
)
def test_bodies_of_messages_a_worker_cannot_run_are_hidden(
    local_app: ProjectCelery,
    caplog: pytest.LogCaptureFixture,
    message: str,
    values: tuple[str, ...],
) -> None:
    logging.getLogger(consumer.__name__).error(vars(consumer)[message], *values)
    (record,) = caplog.records
    assert MARKER not in record.getMessage()
    assert observability.HIDDEN in record.getMessage()
