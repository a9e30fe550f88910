"""Properties of the task contracts, over generated inputs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.tasks.billing import (
    CreditRequest,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    ProcessDataOutput,
    process_data,
)
from {{ cookiecutter.package_name }}.tasks.notifications import (
    Notification,
)

valid_inputs = st.builds(ProcessDataInput, value=st.integers(), label=st.text())
json_scalars = st.none() | st.booleans() | st.floats(allow_nan=False) | st.text() | st.integers()


@given(valid_inputs)
def test_inputs_round_trip_through_json(payload: ProcessDataInput) -> None:
    assert ProcessDataInput.model_validate_json(payload.model_dump_json()) == payload


@given(st.builds(ProcessDataOutput, message=st.text()))
def test_outputs_round_trip_through_json(output: ProcessDataOutput) -> None:
    assert ProcessDataOutput.model_validate_json(output.model_dump_json()) == output


@given(st.from_type(CreditRequest) | st.from_type(Notification))
def test_every_task_model_round_trips(model: CreditRequest | Notification) -> None:
    assert type(model).model_validate_json(model.model_dump_json()) == model


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
