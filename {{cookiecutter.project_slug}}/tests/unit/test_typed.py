"""The typed-task layer: shapes it accepts, models it returns, its registry."""

from __future__ import annotations

from typing import Any

import pytest
from celery.result import AsyncResult

from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
    create_app,
)
from {{ cookiecutter.package_name }}.config import (
    ConfigError,
    Settings,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    ProcessDataOutput,
    process_data,
)
from {{ cookiecutter.package_name }}.tasks.typed import (
    ModelResult,
    TaskModel,
    models_of,
    typed_tasks,
)


class Other(TaskModel):
    """A model for shape tests."""

    n: int


def two_parameters(a: Other, b: Other) -> Other:
    """Not a typed task: two inputs."""
    return a


def plain_input(a: int) -> Other:
    """Not a typed task: input is not a model."""
    return Other(n=a)


def plain_output(a: Other) -> int:
    """Not a typed task: output is not a model."""
    return a.n


@pytest.mark.parametrize(
    ("function", "role"),
    [
        (two_parameters, "its one parameter"),
        (plain_input, "its one parameter"),
        (plain_output, "its return"),
    ],
)
def test_models_of_rejects_other_shapes(function: object, role: str) -> None:
    with pytest.raises(TypeError, match=f"{role} must be annotated with a pydantic model"):
        models_of(function)  # type: ignore[arg-type]


def test_registry_lists_every_typed_task(local_app: ProjectCelery) -> None:
    registry = typed_tasks(local_app)
    assert {
        "apply_credit",
        "process_data",
        "render_thumbnail",
        "send_notification",
        "summarize_batch",
    } <= set(registry)
    assert registry["process_data"].input_model is ProcessDataInput
    assert registry["process_data"].output_model is ProcessDataOutput


def test_two_typed_tasks_with_one_short_name_are_refused(
    local_settings: Settings, same_short_name: tuple[str, str]
) -> None:
    first, second = same_short_name
    with pytest.raises(ConfigError, match=f"typed tasks {first} and {second} are both 'echo'"):
        create_app(local_settings)


def test_direct_call_returns_the_model(local_app: ProjectCelery) -> None:
    output = process_data(ProcessDataInput(value=3, label="x"))
    assert output == ProcessDataOutput(message="Processed: 3 - x")


def test_results_come_back_as_models(local_app: ProjectCelery) -> None:
    result = process_data.AsyncResult("some-id")
    assert isinstance(result, ModelResult)
    local_app.backend.store_result("some-id", {"message": "Processed: 1 - a"}, "SUCCESS")
    assert result.get(timeout=1) == ProcessDataOutput(message="Processed: 1 - a")


def test_a_failure_without_propagate_comes_back_as_the_exception(
    local_app: ProjectCelery,
) -> None:
    local_app.backend.mark_as_failure("failed-id", ValueError("boom"))
    result = process_data.AsyncResult("failed-id")
    error = result.get(timeout=1, propagate=False)
    assert isinstance(error, ValueError)
    assert str(error) == "boom"
    with pytest.raises(ValueError, match="boom"):
        result.get(timeout=1)


def test_signatures_carry_json(local_app: ProjectCelery) -> None:
    signature = process_data.s(ProcessDataInput(value=1, label="a"))
    assert signature.args == ({"value": 1, "label": "a"},)


def test_a_publish_dumps_the_input_model_once(
    local_app: ProjectCelery, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Celery's generic dump (which validates each dump again) gets JSON, nothing to do.
    task: Any = local_app.tasks[process_data.name]  # the stubs know no pydantic attributes
    dump = task._dump_pydantic_arguments
    seen: list[object] = []

    def recording(args: tuple[object, ...], kwargs: dict[str, object]) -> object:
        seen.append(args[0])
        return dump(args, kwargs)

    monkeypatch.setattr(task, "_dump_pydantic_arguments", recording)
    record = ProcessDataInput(value=1, label="a")
    process_data.delay(record)
    assert seen == [record.model_dump(mode="json")]


def test_plain_async_result_is_untyped(local_app: ProjectCelery) -> None:
    assert not isinstance(local_app.AsyncResult("x"), ModelResult)
    assert isinstance(local_app.AsyncResult("x"), AsyncResult)
