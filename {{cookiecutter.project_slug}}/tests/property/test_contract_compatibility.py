"""The committed contracts against the running code, over generated data.

``contracts check`` compares schemas; these properties run the code. For every
committed contract: every input the committed input schema allows (what the old code
may have queued) is accepted by the current input model, and every output the
current task returns validates against the committed output schema (what callers on
the old code read).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from copy import deepcopy
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import pytest
from hypothesis import given
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator
from jsonschema import ValidationError as SchemaError
from pydantic import BaseModel, Field, StrictInt, StrictStr, ValidationError

from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
)
from {{ cookiecutter.package_name }}.contracts import (
    Schema,
    compare_schemas,
    load,
)
from {{ cookiecutter.package_name }}.tasks.typed import (
    TaskModel,
    typed_tasks,
)

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
# Generated inputs run the real task bodies, so the work an input asks for is capped
# here: render_thumbnail hashes a width x height buffer `passes` times, up to 16 MB a
# million times. Its output (a path and a digest) has the same shape whatever these
# sizes, so small ones check the same property. A costly new task gets a line here.
WORK_CAPS: dict[str, dict[str, int]] = {
    "render_thumbnail": {"width": 64, "height": 64, "passes": 3},
}


@cache
def committed() -> dict[str, Schema]:
    """The committed contracts, read once."""
    return load(CONTRACTS)


def capped(schema: Schema, caps: dict[str, int]) -> Schema:
    """The schema with a lower ``maximum`` on the fields named in ``caps``."""
    schema = deepcopy(schema)
    for field, cap in caps.items():
        bounds = schema["properties"][field]
        bounds["maximum"] = min(bounds.get("maximum", cap), cap)
    return schema


def accepts_every_input(schema: Schema, model: type[BaseModel]) -> None:
    """Raise if ``model`` refuses an instance of ``schema``, received as JSON."""

    @given(from_schema(schema))
    def accepted(instance: Any) -> None:
        model.model_validate_json(json.dumps(instance))

    accepted()


def outputs_validate(
    schema: Schema, run: Callable[[Any], BaseModel], output_schema: Schema
) -> None:
    """Raise if ``run`` returns, for an instance of ``schema``, an invalid output."""
    validator = Draft202012Validator(output_schema)

    @given(from_schema(schema))
    def produced(instance: Any) -> None:
        # As the result backend stores it: JSON, read back by the old callers.
        validator.validate(json.loads(run(instance).model_dump_json()))

    produced()


@pytest.mark.parametrize("name", sorted(committed()))
def test_the_current_input_model_accepts_every_committed_input(
    name: str, local_app: ProjectCelery
) -> None:
    task = typed_tasks(local_app)[name]
    accepts_every_input(committed()[name]["input"], task.input_model)


@pytest.mark.parametrize("name", sorted(committed()))
def test_every_output_of_the_current_task_matches_the_committed_schema(
    name: str, local_app: ProjectCelery
) -> None:
    # local_app runs the tasks with the unit tests' resources: a file ledger in a
    # temporary folder, a recording gateway, files under a temporary data_dir. The
    # task bodies are the real ones; only what they talk to is local.
    task = typed_tasks(local_app)[name]
    contract = committed()[name]
    schema = capped(contract["input"], WORK_CAPS.get(name, {}))

    def run(instance: Any) -> BaseModel:
        output: BaseModel = task(task.input_model.model_validate_json(json.dumps(instance)))
        return output

    outputs_validate(schema, run, contract["output"])


# A model changed incompatibly fails both the gate and the property.


class NarrowedInput(TaskModel):
    value: Annotated[StrictInt, Field(le=10)]
    label: StrictStr


class NewRequiredInput(TaskModel):
    value: StrictInt
    label: StrictStr
    priority: StrictInt


class WiderOutput(TaskModel):
    message: str
    elapsed: float


@pytest.mark.parametrize("model", [NarrowedInput, NewRequiredInput])
def test_an_incompatible_input_model_fails_the_gate_and_the_property(
    model: type[BaseModel],
) -> None:
    old = committed()["process_data"]["input"]
    changes = compare_schemas(old, model.model_json_schema(), "input")
    assert [breaking for _, _, breaking in changes] == [True]
    with pytest.raises(ValidationError):
        accepts_every_input(old, model)


def test_an_incompatible_output_fails_the_gate_and_the_property() -> None:
    contract = committed()["process_data"]
    changes = compare_schemas(contract["output"], WiderOutput.model_json_schema(), "output")
    assert changes == [
        ("output.elapsed", "new output field, refused by the old output model", True)
    ]

    def run(instance: Any) -> BaseModel:
        return WiderOutput(message=str(instance), elapsed=0.5)

    with pytest.raises(SchemaError, match="elapsed"):
        outputs_validate(contract["input"], run, contract["output"])
