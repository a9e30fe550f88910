"""The contract gate: which model changes break messages in flight or results being read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.celery_app import create_app
from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import load_settings
from {{ cookiecutter.package_name }}.contracts import (
    Change,
    compare,
    compare_schemas,
    current_contracts,
    dump,
    load,
    render,
)
from {{ cookiecutter.package_name }}.tasks.typed import TaskModel

runner = CliRunner()
PROCESS_DATA = "{{ cookiecutter.package_name }}.tasks.data.process_data"


def diff(old: type[BaseModel], new: type[BaseModel], role: Literal["input", "output"]) -> Any:
    """``{(field, rule): breaking}`` between two versions of a model."""
    changes = compare_schemas(old.model_json_schema(), new.model_json_schema(), role)
    return {(field, rule): breaking for field, rule, breaking in changes}


class Old(TaskModel):
    value: int
    label: str
    note: str | None = None


# Breaking input changes: each names its field and rule.


def test_removed_input_field_breaks() -> None:
    class New(TaskModel):
        value: int
        note: str | None = None

    assert diff(Old, New, "input") == {("input.label", "removed input field"): True}


def test_renamed_input_field_breaks_twice() -> None:
    class New(TaskModel):
        value: int
        title: str
        note: str | None = None

    assert diff(Old, New, "input") == {
        ("input.label", "removed input field"): True,
        ("input.title", "new required input field without a default"): True,
    }


def test_new_required_input_field_breaks() -> None:
    class New(Old):
        priority: int

    assert diff(Old, New, "input") == {
        ("input.priority", "new required input field without a default"): True
    }


def test_optional_input_field_made_required_breaks() -> None:
    class New(TaskModel):
        value: int
        label: str
        note: str

    changes = diff(Old, New, "input")
    assert changes[("input.note", "field became required")] is True
    assert changes[("input.note", "type narrowed: null|string -> string")] is True


def test_incompatible_input_type_breaks() -> None:
    class New(TaskModel):
        value: str
        label: str
        note: str | None = None

    changes = diff(Old, New, "input")
    assert changes[("input.value", "type narrowed: integer -> string")] is True


@pytest.mark.parametrize(
    ("before", "after", "rule"),
    [
        (Field(le=10), Field(le=5), "maximum lowered (10 -> 5)"),
        (Field(ge=0), Field(ge=1), "minimum raised (0 -> 1)"),
        (Field(), Field(lt=100), "exclusiveMaximum added (100)"),
        (Field(), Field(pattern="^a"), "pattern changed (None -> '^a')"),
        (Field(pattern="^a"), Field(pattern="^b"), "pattern changed ('^a' -> '^b')"),
    ],
)
def test_tighter_input_constraint_breaks(before: Any, after: Any, rule: str) -> None:
    kind = str if "pattern" in rule else int

    class Before(TaskModel):
        field: Annotated[kind, before]  # type: ignore[valid-type]

    class After(TaskModel):
        field: Annotated[kind, after]  # type: ignore[valid-type]

    assert diff(Before, After, "input") == {("input.field", rule): True}
    # Backwards, a bound loosens or a pattern goes: compatible; a pattern swapped
    # for another one still refuses values the old one took.
    backwards_breaks = "'^a' -> '^b'" in rule
    assert list(diff(After, Before, "input").values()) == [backwards_breaks]


def test_removed_enum_value_breaks() -> None:
    class Before(TaskModel):
        size: Literal["s", "m", "l"]

    class After(TaskModel):
        size: Literal["s", "m"]

    assert diff(Before, After, "input") == {("input.size", "enum values removed (['l'])"): True}


def test_nested_model_change_is_found_through_refs() -> None:
    class Inner(TaskModel):
        count: int

    class Inner2(TaskModel):
        count: Annotated[int, Field(le=3)]

    class Before(TaskModel):
        items: list[Inner] | None = None

    class After(TaskModel):
        items: list[Inner2] | None = None

    assert diff(Before, After, "input") == {("input.items[].count", "maximum added (3)"): True}


def wrapped(field: dict[str, Any]) -> dict[str, Any]:
    """An object schema with one required field ``f``."""
    return {"type": "object", "properties": {"f": field}, "required": ["f"]}


@pytest.mark.parametrize(
    ("before", "after", "rule", "breaking"),
    [
        ({}, {"type": "integer"}, "type narrowed: any -> integer", True),
        ({"type": "integer"}, {}, "type widened: integer -> any", False),
        ({"type": "string"}, {"type": "string", "enum": ["a"]}, "enum added (['a'])", True),
        ({"type": "string", "enum": ["a"]}, {"type": "string"}, "enum removed", False),
        ({"enum": [1, "a"]}, {"enum": [1, "a", "b"]}, "enum values added (['b'])", False),
        ({"const": "a"}, {"const": "b"}, "const changed ('a' -> 'b')", True),
        (
            {"type": "array", "items": {"type": "integer"}},
            {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
            "uniqueItems added",
            True,
        ),
    ],
)
def test_hand_written_schemas(
    before: dict[str, Any], after: dict[str, Any], rule: str, breaking: bool
) -> None:
    changes = compare_schemas(wrapped(before), wrapped(after), "input")
    assert changes == [("input.f", rule, breaking)]


def test_single_all_of_is_the_schema_it_wraps() -> None:
    before = wrapped({"allOf": [{"type": "integer"}]})
    assert compare_schemas(before, wrapped({"type": "integer"}), "input") == []


class Node(TaskModel):
    value: int
    children: tuple[Node, ...] = ()


class BoundedNode(TaskModel):
    value: Annotated[int, Field(le=9)]
    children: tuple[BoundedNode, ...] = ()


def test_recursive_models_are_compared_once_per_level() -> None:
    assert diff(Node, BoundedNode, "input") == {
        ("input.value", "maximum added (9)"): True,
        ("input.children[].value", "maximum added (9)"): True,
    }


# Breaking output changes and task-level changes.


def test_removed_output_field_breaks() -> None:
    class New(TaskModel):
        value: int
        note: str | None = None

    assert diff(Old, New, "output") == {("output.label", "removed output field"): True}


def test_wider_output_type_breaks_old_readers() -> None:
    class New(TaskModel):
        value: int | str
        label: str
        note: str | None = None

    assert diff(Old, New, "output") == {
        ("output.value", "type widened: integer -> integer|string"): True
    }


def contract(name: str = PROCESS_DATA, queue: str = "default") -> dict[str, Any]:
    schema = Old.model_json_schema()
    short = name.rsplit(".", 1)[-1]
    return {"name": name, "short_name": short, "queue": queue, "input": schema, "output": schema}


def test_removed_or_renamed_task_breaks() -> None:
    changes = compare({"process_data": contract()}, {"handle": contract(name="x.handle")})
    assert Change(PROCESS_DATA, "(task)", "new task", breaking=False) not in changes
    assert [str(change) for change in changes] == [
        (
            f"BREAKING: {PROCESS_DATA}: (task): task removed or renamed: "
            "queued messages for it would find no task"
        ),
        "compatible: x.handle: (task): new task",
    ]


def test_task_moved_to_another_queue_breaks() -> None:
    changes = compare({"process_data": contract()}, {"process_data": contract(queue="cpu")})
    assert [(change.field, change.breaking) for change in changes] == [("(queue)", True)]
    assert "moved from queue 'default' to 'cpu'" in changes[0].rule


# Compatible changes pass and are reported.


def test_new_optional_input_field_is_compatible() -> None:
    class New(Old):
        priority: int = 0

    assert diff(Old, New, "input") == {("input.priority", "new optional input field"): False}


@pytest.mark.parametrize(
    ("after", "rule"),
    [
        (float, "type widened: integer -> number"),
        (int | None, "type widened: integer -> integer|null"),
        (int | str, "type widened: integer -> integer|string"),
    ],
)
def test_wider_input_type_is_compatible(after: Any, rule: str) -> None:
    class Before(TaskModel):
        value: int

    class After(TaskModel):
        value: after

    assert diff(Before, After, "input") == {("input.value", rule): False}


def test_new_output_field_is_compatible_when_old_readers_ignore_unknown_fields() -> None:
    class Tolerant(BaseModel):
        model_config = ConfigDict(extra="ignore")

        message: str

    class New(Tolerant):
        elapsed: float = 0

    assert diff(Tolerant, New, "output") == {("output.elapsed", "new output field"): False}


def test_new_output_field_breaks_old_readers_that_forbid_unknown_fields() -> None:
    class New(Old):
        elapsed: float = 0

    rule = "new output field, refused by the old output model"
    assert diff(Old, New, "output") == {("output.elapsed", rule): True}
    # What that rule protects: the old model refuses a result of the new one.
    with pytest.raises(ValidationError, match="elapsed"):
        Old.model_validate(New(value=1, label="a").model_dump())


def test_new_task_is_compatible() -> None:
    current = {"process_data": contract(), "b": contract("x.b")}
    changes = compare({"process_data": contract()}, current)
    assert changes == [Change("x.b", "(task)", "new task", breaking=False)]


def test_narrowing_a_shared_output_model_breaks_the_task_that_takes_it() -> None:
    # ProcessDataOutput is process_data's output and summarize_batch's input items
    # (README, Task contracts): one change, judged by both rules.
    old = current_contracts(create_app(load_settings("test")))
    new = json.loads(json.dumps(old))
    new["process_data"]["output"]["properties"]["message"]["maxLength"] = 100
    new["summarize_batch"]["input"]["$defs"]["ProcessDataOutput"]["properties"]["message"][
        "maxLength"
    ] = 100
    summarize = "{{ cookiecutter.package_name }}.tasks.data.summarize_batch"
    assert [str(change) for change in compare(old, new)] == [
        f"compatible: {PROCESS_DATA}: output.message: maxLength added (100)",
        f"BREAKING: {summarize}: input[].message: maxLength added (100)",
    ]


def test_unchanged_contracts_have_no_changes() -> None:
    contracts = current_contracts(create_app(load_settings("test")))
    assert compare(contracts, contracts) == []


# Files and the command line.


def test_dump_is_stable_and_removes_tasks_that_are_gone(tmp_path: Path) -> None:
    contracts = current_contracts(create_app(load_settings("test")))
    (tmp_path / "gone.json").write_text("{}")
    dump(contracts, tmp_path)
    first = {path.name: path.read_text() for path in tmp_path.iterdir()}
    assert sorted(first) == sorted(f"{name}.json" for name in contracts)
    dump(contracts, tmp_path)
    assert {path.name: path.read_text() for path in tmp_path.iterdir()} == first
    assert load(tmp_path) == contracts
    assert first["process_data.json"] == render(contracts["process_data"])
    assert json.loads(first["process_data.json"])["queue"] == "default"


def test_cli_check_passes_right_after_dump() -> None:
    assert runner.invoke(app, ["contracts", "dump"]).exit_code == 0
    assert runner.invoke(app, ["contracts", "docs"]).exit_code == 0
    result = runner.invoke(app, ["contracts", "check"])
    assert result.exit_code == 0, result.output
    assert "the code matches the committed contracts" in result.stdout


def test_cli_check_without_contracts_says_to_dump() -> None:
    result = runner.invoke(app, ["contracts", "check"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: no task contracts in contracts/: run `contracts dump` and commit the files"
    )


def edit_committed(folder: Path, name: str, change: Any) -> None:
    """Rewrite one committed contract, as an older version of the code would have left it."""
    path = folder / f"{name}.json"
    committed = json.loads(path.read_text())
    change(committed)
    path.write_text(render(committed))


def test_cli_check_fails_when_a_real_task_breaks_its_contract(tmp_path: Path) -> None:
    runner.invoke(app, ["contracts", "dump", "--dir", str(tmp_path)])

    # The committed process_data took a `priority` the code no longer has, and a
    # string value the code no longer accepts: old messages of both kinds would fail.
    def older(committed: dict[str, Any]) -> None:
        committed["input"]["properties"]["priority"] = {"type": "integer"}
        committed["input"]["properties"]["value"]["type"] = ["integer", "string"]

    edit_committed(tmp_path, "process_data", older)
    result = runner.invoke(app, ["contracts", "check", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert f"BREAKING: {PROCESS_DATA}: input.priority: removed input field" in result.output
    assert (
        f"BREAKING: {PROCESS_DATA}: input.value: type narrowed: integer|string -> integer"
        in result.output
    )
    assert "error: the code breaks committed task contracts" in result.output


def test_cli_check_reports_compatible_changes_and_asks_to_record_them(tmp_path: Path) -> None:
    runner.invoke(app, ["contracts", "dump", "--dir", str(tmp_path)])
    runner.invoke(app, ["contracts", "docs"])

    def older(committed: dict[str, Any]) -> None:
        committed["input"]["properties"]["value"]["maximum"] = 10  # the code dropped it

    edit_committed(tmp_path, "process_data", older)
    (tmp_path / "summarize_batch.json").unlink()  # the code added this task
    result = runner.invoke(app, ["contracts", "check", "--dir", str(tmp_path)])
    # Allowed by the rules, but not recorded: the next change would be compared with
    # the old baseline, so the check fails until `contracts dump` is committed.
    assert result.exit_code == 1, result.output
    assert f"compatible: {PROCESS_DATA}: input.value: maximum removed (10)" in result.stdout
    summarize = "{{ cookiecutter.package_name }}.tasks.data.summarize_batch"
    assert f"compatible: {summarize}: (task): new task" in result.stdout
    assert "compatible: the changes above keep messages in flight" in result.stdout
    assert (
        f"error: not recorded: {tmp_path}/process_data.json (differs), "
        f"{tmp_path}/summarize_batch.json (missing); "
        "run `uv run {{ cookiecutter.project_slug }} contracts dump` and commit them"
    ) in result.output
    assert "the code matches" not in result.output


def test_cli_check_fails_on_a_contract_that_differs_only_in_documentation(tmp_path: Path) -> None:
    runner.invoke(app, ["contracts", "dump", "--dir", str(tmp_path)])
    runner.invoke(app, ["contracts", "docs"])

    def older(committed: dict[str, Any]) -> None:
        committed["input"]["examples"] = [{"value": 1}]  # an example the code changed since

    edit_committed(tmp_path, "process_data", older)
    # A copy under another file name: the same task, so no change, but not dump's file.
    copy = (tmp_path / "process_data.json").read_text()
    (tmp_path / "process_data_copy.json").write_text(copy)
    result = runner.invoke(app, ["contracts", "check", "--dir", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert f"{tmp_path}/process_data.json (differs)" in result.output
    assert f"{tmp_path}/process_data_copy.json (no such task)" in result.output
    assert "the code matches" not in result.output
