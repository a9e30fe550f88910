"""Signatures of typed tasks and the canvas samples, run in-process."""

from __future__ import annotations

import logging

import pytest
from celery.app.task import Context
from celery.exceptions import ChordError

from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    ordered_chain,
    process_data,
    record_failure,
    summarize_batch,
)
from {{ cookiecutter.package_name }}.tasks.typed import (
    TaskInputError,
)

RECORD = ProcessDataInput(value=1, label="a")
INVALID = {"value": "x", "label": 1}


def test_an_immutable_signature_carries_its_model_as_json(local_app: ProjectCelery) -> None:
    immutable = process_data.si(RECORD)
    assert (immutable.args, immutable.immutable) == (({"value": 1, "label": "a"},), True)


def test_the_partial_signature_waits_for_the_previous_result(local_app: ProjectCelery) -> None:
    partial = summarize_batch.s()
    assert (partial.args, partial.immutable) == ((), False)


def test_apply_returns_what_the_worker_stores(local_app: ProjectCelery) -> None:
    # apply() is typed Any: the result is the JSON the result store would hold.
    assert process_data.apply((RECORD,)).get() == {"message": "Processed: 1 - a"}
    assert process_data.s(RECORD).apply().get() == {"message": "Processed: 1 - a"}


def test_record_failure_logs_the_task_and_its_error(
    local_app: ProjectCelery, caplog: pytest.LogCaptureFixture
) -> None:
    request = Context(id="failed-id", task="some.task")
    record_failure(request, ChordError("Dependency header-id raised ValueError()"), None)
    (logged,) = caplog.records
    assert logged.levelno == logging.ERROR
    assert logged.getMessage() == (
        "task failed-id (some.task) failed: ChordError: Dependency header-id raised ValueError()"
    )
    assert (logged.failed_task_id, logged.failed_task) == ("failed-id", "some.task")  # type: ignore[attr-defined]


def test_a_failing_task_calls_its_errback(
    local_app: ProjectCelery, caplog: pytest.LogCaptureFixture
) -> None:
    result = process_data.apply((INVALID,), link_error=record_failure.s())
    assert isinstance(result.result, TaskInputError)
    assert [r.failed_task_id for r in caplog.records if r.name.endswith(".data")] == [  # type: ignore[attr-defined]
        result.id
    ]


def test_an_empty_chain_is_refused(local_app: ProjectCelery) -> None:
    with pytest.raises(ValueError, match="ordered_chain needs at least one step"):
        ordered_chain([])


def test_a_failing_step_of_a_chain_calls_its_errback(
    local_app: ProjectCelery, caplog: pytest.LogCaptureFixture
) -> None:
    invalid = process_data.signature((INVALID,), immutable=True)
    result = ordered_chain([process_data.si(RECORD), invalid]).apply()
    assert isinstance(result.result, TaskInputError)
    assert result.parent is not None
    assert result.parent.successful()  # type: ignore[attr-defined]
    assert [r.failed_task_id for r in caplog.records if r.name.endswith(".data")] == [  # type: ignore[attr-defined]
        result.id
    ]
