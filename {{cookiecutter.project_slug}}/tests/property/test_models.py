"""Properties of the task contracts, over generated inputs."""

from __future__ import annotations

import json
from typing import Annotated, Any

import pytest
from celery import current_app
from hypothesis import given
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from kombu.serialization import dumps, loads
from pydantic import BaseModel, Field, StrictInt, StrictStr, ValidationError

from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    process_data,
)
from {{ cookiecutter.package_name }}.tasks.typed import (
    TaskModel,
    typed_tasks,
)

valid_inputs = st.builds(ProcessDataInput, value=st.integers(), label=st.text())
json_scalars = st.none() | st.booleans() | st.floats(allow_nan=False) | st.text() | st.integers()


def inputs_of(model: type[BaseModel]) -> st.SearchStrategy[BaseModel]:
    """Instances of ``model`` built from its own JSON Schema, as a caller builds them.

    From the schema (hypothesis-jsonschema) rather than from the fields' Python types:
    Hypothesis cannot build strict types, constrained strings or root models from
    their types, so a new task's model would need a hand-written strategy. The schema
    says what a caller may send; the model must accept all of it.
    """
    schema = from_schema(model.model_json_schema())
    return schema.map(lambda instance: model.model_validate_json(json.dumps(instance)))


@pytest.mark.usefixtures("local_app")
@given(st.data())
def test_a_worker_accepts_every_input_a_caller_can_build(data: st.DataObject) -> None:
    # Every task of the registry: a new task is covered as soon as it is registered.
    tasks = typed_tasks(current_app)
    task = tasks[data.draw(st.sampled_from(sorted(tasks)))]
    payload = data.draw(inputs_of(task.input_model))
    # What a canvas publishes, through the JSON the broker carries, as the worker checks it.
    content_type, encoding, body = dumps(task.s(payload).args, serializer="json")
    (received,) = loads(body, content_type, encoding, accept=["application/json"])
    assert task.validated(received) == payload


def test_inputs_are_built_for_a_new_model_with_strict_fields() -> None:
    # The README's process_data_v2: strict and constrained fields, no registration.
    class PrioritisedInput(TaskModel):
        value: StrictInt
        label: StrictStr
        priority: Annotated[StrictInt, Field(ge=0, le=9)]
        code: Annotated[str, Field(pattern=r"^[0-9]{6}$")]

    @given(inputs_of(PrioritisedInput))
    def built(payload: PrioritisedInput) -> None:
        assert 0 <= payload.priority <= 9
        assert len(payload.code) == 6

    built()


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
