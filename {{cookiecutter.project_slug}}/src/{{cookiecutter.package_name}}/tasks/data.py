"""Data processing: the canonical typed task, and canvases (group, chord, chain).

The canvases record a failure with ``record_failure``, an errback: when a task of
theirs fails, the rest does not run and the failure is logged with the task's id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, cast

from celery import chain, chord, group, shared_task
from celery.app.task import Context
from celery.canvas import Signature
from celery.result import GroupResult
from pydantic import ConfigDict, RootModel, StrictInt, StrictStr

from .typed import ModelResult, TaskModel, typed_task

logger = logging.getLogger(__name__)


class ProcessDataInput(TaskModel):
    """One record to process."""

    # Examples are part of the contract, the API schema and docs/tasks.md; the tests
    # submit each one, so keep them valid.
    model_config = ConfigDict(json_schema_extra={"examples": [{"value": 42, "label": "answer"}]})

    value: StrictInt
    label: StrictStr


class ProcessDataOutput(TaskModel):
    """What processing a record produced."""

    message: str


class ProcessedBatch(RootModel[list[ProcessDataOutput]]):
    """The outputs of a fan-out, in submission order (what a chord hands its body)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [[{"message": "Processed: 42 - answer"}]]}
    )


class BatchSummary(TaskModel):
    """The aggregate of a batch."""

    count: int
    messages: list[str]


@typed_task()
def process_data(payload: ProcessDataInput) -> ProcessDataOutput:
    """Turn one record into its message."""
    return ProcessDataOutput(message=f"Processed: {payload.value} - {payload.label}")


@typed_task()
def summarize_batch(batch: ProcessedBatch) -> BatchSummary:
    """Aggregate the outputs of a fan-out (the body of a chord)."""
    messages = [item.message for item in batch.root]
    return BatchSummary(count=len(messages), messages=messages)


@shared_task(bind=False, ignore_result=True)
def record_failure(request: Context, exc: BaseException, _traceback: str | None) -> None:
    """Errback: log which task failed and why, with its id, for whoever follows up.

    Celery calls an errback that takes these three arguments in the worker that saw
    the failure, with live objects, so nothing here has to survive JSON. For a chord
    whose header failed, ``request`` is the body's (which will not run) and the error
    (a ChordError) names the header task that failed. The traceback is left out:
    Celery has already logged it with the failure.
    """
    task = request.get("task")
    logger.error(
        "task %s (%s) failed: %s: %s",
        request.id,
        task,
        type(exc).__name__,
        exc,
        extra={"failed_task_id": request.id, "failed_task": task},
    )


def fan_out(records: Iterable[ProcessDataInput]) -> GroupResult:
    """Process records in parallel.

    The group's ``get()`` is untyped and depends on the result backend: output models
    on the local file backend, JSON dicts on Redis.
    ``process_data.group_outputs(result)`` returns the output models on every backend.
    """
    result = group(process_data.s(record) for record in records).apply_async()
    return cast(GroupResult, result)  # the stubs type group results as AsyncResult


def batch_chord(header: Iterable[Signature[Any]]) -> Signature[Any]:
    """A chord: the header's tasks in parallel, then ``summarize_batch`` of their outputs.

    If a header task fails, the summary does not run and ``record_failure`` logs it.
    """
    body = summarize_batch.s()  # partial: Celery prepends the header's results
    body.link_error(record_failure.s())
    return chord(header, body)


def process_batch(records: Iterable[ProcessDataInput]) -> ModelResult[BatchSummary]:
    """Process records in parallel, then summarise them once all are done."""
    result = batch_chord(process_data.s(record) for record in records).apply_async()
    # The chord's result is its body's; asking the body task for it types it.
    return summarize_batch.AsyncResult(result.id, parent=result.parent)


def ordered_chain(steps: Iterable[Signature[Any]]) -> Signature[Any]:
    """A chain: each step after the previous one succeeded, stopping at a failure.

    ``record_failure`` logs the failure; the steps after it do not run.
    ValueError if there are no steps.
    """
    signatures = list(steps)
    if not signatures:
        raise ValueError("ordered_chain needs at least one step")
    canvas = chain(*signatures)
    canvas.link_error(record_failure.s())
    return canvas


def process_in_order(records: Iterable[ProcessDataInput]) -> ModelResult[ProcessDataOutput]:
    """Process records one after another; the result is the last record's."""
    result = ordered_chain(process_data.si(record) for record in records).apply_async()
    # The chain's result is its last step's; asking the task for it types it.
    return process_data.AsyncResult(result.id, parent=result.parent)
