"""Structured task records and log formats."""

from __future__ import annotations

import json
import logging

import pytest
from celery.contrib.testing.worker import start_worker
from celery.worker.consumer import consumer

from {{ cookiecutter.package_name }} import observability
from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
    create_app,
)
from {{ cookiecutter.package_name }}.config import (
    Settings,
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


def test_text_logs_are_readable(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSettings(level="WARNING", json_format=False))
    logging.getLogger("demo").warning("careful")
    assert "WARNING demo: careful" in capsys.readouterr().err


MARKER = "personal-7f3a"


# Set by the worker's logging setup; restored after the test by monkeypatch.
WORKER_ENVIRONMENT = (
    "CELERY_LOG_LEVEL",
    "CELERY_LOG_FILE",
    "_MP_FORK_LOGLEVEL_",
    "_MP_FORK_LOGFILE_",
    "_MP_FORK_LOGFORMAT_",
)


@pytest.mark.parametrize("shown", [False, True])
def test_task_data_stays_out_of_logs_and_the_result_store_unless_turned_on(
    local_settings: Settings,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    shown: bool,
) -> None:
    settings = local_settings.model_copy(
        update={
            "log": local_settings.log.model_copy(update={"task_data": shown}),
            "results": local_settings.results.model_copy(update={"extended": shown}),
        }
    )
    app = create_app(settings)
    caplog.set_level(logging.DEBUG)
    for name in WORKER_ENVIRONMENT:
        monkeypatch.setenv(name, "")
    with start_worker(app, perform_ping_check=False):
        succeeds = process_data.delay(ProcessDataInput(value=1, label=MARKER))
        fails = app.send_task(process_data.name, args=[{"value": "x", "label": MARKER}])
        unknown = app.send_task(f"{process_data.name}_v2", args=[{"label": MARKER}])
        assert succeeds.get(timeout=10).message.endswith(MARKER)  # results stay readable
        fails.get(timeout=10, propagate=False)
        unknown.get(timeout=10, propagate=False)
    # Celery's received, pool, succeeded, failed and unknown-task lines, and our records.
    assert {record.name for record in caplog.records} >= {
        "celery.worker.strategy",
        "celery.pool",
        "celery.app.trace",
        "celery.worker.consumer.consumer",
        observability.logger.name,
    }
    logged = "\n".join(str(vars(record)) for record in caplog.records)
    assert (MARKER in logged) is shown
    stored = [app.backend.get_task_meta(result.id).get("args") for result in (succeeds, fails)]
    assert (MARKER in str(stored)) is shown


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
