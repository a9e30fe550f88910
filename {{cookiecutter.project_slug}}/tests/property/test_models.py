"""Properties of the task contracts, over generated inputs."""

from __future__ import annotations

from typing import Any

import pytest
from celery import current_app
from hypothesis import given
from hypothesis import strategies as st
from kombu.serialization import dumps, loads
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    ProcessDataOutput,
    ProcessedBatch,
    process_data,
)
from {{ cookiecutter.package_name }}.tasks.media import (
    ThumbnailRequest,
)
from {{ cookiecutter.package_name }}.tasks.notifications import (
    LoginCode,
)
from {{ cookiecutter.package_name }}.tasks.typed import (
    typed_tasks,
)

valid_inputs = st.builds(ProcessDataInput, value=st.integers(), label=st.text())
json_scalars = st.none() | st.booleans() | st.floats(allow_nan=False) | st.text() | st.integers()
# Hypothesis builds most models from their fields; these it cannot (strict types, a root
# model), so they get a strategy. Register one for a new input model the same way.
st.register_type_strategy(ProcessDataInput, valid_inputs)
st.register_type_strategy(
    ProcessedBatch, st.builds(ProcessedBatch, st.lists(st.builds(ProcessDataOutput)))
)
st.register_type_strategy(
    ThumbnailRequest,
    st.builds(ThumbnailRequest, source_id=st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)),
)
st.register_type_strategy(
    LoginCode,
    st.builds(LoginCode, code=st.from_regex(r"[0-9]{6}", fullmatch=True)),
)


@pytest.mark.usefixtures("local_app")
@given(st.data())
def test_a_worker_accepts_every_input_a_caller_can_build(data: st.DataObject) -> None:
    # Every task of the registry: a new task is covered as soon as it is registered.
    tasks = typed_tasks(current_app)
    task = tasks[data.draw(st.sampled_from(sorted(tasks)))]
    payload = data.draw(st.from_type(task.input_model))
    # What a canvas publishes, through the JSON the broker carries, as the worker checks it.
    content_type, encoding, body = dumps(task.s(payload).args, serializer="json")
    (received,) = loads(body, content_type, encoding, accept=["application/json"])
    assert task.validated(received) == payload


@pytest.mark.usefixtures("local_app")
@given(valid_inputs)
def test_valid_input_never_crashes_process_data(payload: ProcessDataInput) -> None:
    output = process_data(payload)
    assert output.message == f"Processed: {payload.value} - {payload.label}"


@given(
    st.dictionaries(st.text(), json_scalars).filter(
        lambda data: not (
            set(data) == {"value", "label"}
            and type(data["value"]) is int
            and isinstance(data["label"], str)
        )
    )
)
def test_invalid_input_is_always_rejected(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ProcessDataInput.model_validate(data)
