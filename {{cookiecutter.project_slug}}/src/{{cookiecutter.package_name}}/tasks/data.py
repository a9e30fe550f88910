"""Data processing: the canonical typed task, and fan-out with group and chord."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from celery import chord, group
from celery.result import AsyncResult, GroupResult
from pydantic import ConfigDict, RootModel, StrictInt, StrictStr

from .typed import TaskModel, typed_task


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


def fan_out(records: Iterable[ProcessDataInput]) -> GroupResult:
    """Process records in parallel; the caller collects each result."""
    result = group(process_data.sig(record) for record in records).apply_async()
    return cast(GroupResult, result)  # the stubs type group results as AsyncResult


def process_batch(records: Iterable[ProcessDataInput]) -> AsyncResult[BatchSummary]:
    """Process records in parallel, then summarise them once all are done."""
    header = [process_data.sig(record) for record in records]
    result: AsyncResult[BatchSummary] = chord(header)(summarize_batch.s())
    return result
