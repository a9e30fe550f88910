"""Task arguments and results stay out of logs and the result store unless settings turn
them on: a real worker (in a thread, on the embedded broker) runs tasks whose input
carries a marker, and every record and stored result is searched for it.

An integration test although it needs no server: stopping Celery's in-thread worker
takes seconds (its polling loop waits 2 s for the next message), too slow for the
unit run.
"""

from __future__ import annotations

import logging

import pytest
from celery.contrib.testing.worker import start_worker

from {{ cookiecutter.package_name }} import observability
from {{ cookiecutter.package_name }}.celery_app import (
    create_app,
)
from {{ cookiecutter.package_name }}.config import (
    Settings,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    process_data,
)

pytestmark = pytest.mark.integration
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
    for name in observability.CELERY_TASK_LINES:  # whatever configure_logging set before
        caplog.set_level(logging.DEBUG, logger=name)
    for name in WORKER_ENVIRONMENT:
        monkeypatch.setenv(name, "")
    with start_worker(app, perform_ping_check=False):
        succeeds = process_data.delay(ProcessDataInput(value=1, label=MARKER))
        fails = app.send_task(process_data.name, args=[{"value": "x", "label": MARKER}])
        # A name no task can have (a hyphen is not valid in a function name): the README's
        # own advice (`process_data_v2`) must not turn it into a registered task.
        unknown = app.send_task(f"{process_data.name}-unregistered", args=[{"label": MARKER}])
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
