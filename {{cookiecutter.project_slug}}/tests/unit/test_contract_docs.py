"""The task reference (docs/tasks.md): what it states, and the gate that keeps it current."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import pytest
from celery import Celery
from pydantic import ConfigDict, Field
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.celery_app import (
    create_app,
)
from {{ cookiecutter.package_name }}.cli import (
    app,
)
from {{ cookiecutter.package_name }}.config import (
    Settings,
    load_settings,
)
from {{ cookiecutter.package_name }}.contract_docs import (
    constraints,
    reference,
    type_of,
)
from {{ cookiecutter.package_name }}.contracts import (
    compare_schemas,
    current_contracts,
)
from {{ cookiecutter.package_name }}.tasks.typed import (
    TaskModel,
    TypedTask,
    typed_tasks,
)

from ..conftest import Echo, RegisterTasks, echo

runner = CliRunner()
PACKAGE = "{{ cookiecutter.package_name }}"


def section(text: str, task: str) -> str:
    """The section of one task in the reference."""
    return text.split(f"\n## {task}\n", 1)[1].split("\n## ", 1)[0]


def documented_examples() -> list[tuple[str, Any]]:
    """``(task, example)`` for every example input the reference shows."""
    contracts = current_contracts(create_app(load_settings("test")))
    return [
        (name, example)
        for name, contract in sorted(contracts.items())
        for example in contract["input"].get("examples", [])
    ]


def typed_test_task(
    celery: Celery, name: str, input_model: type[TaskModel], **options: Any
) -> None:
    """Register ``echo`` as a typed task of this app only, documented with ``input_model``."""
    # cast: the stubs have no overload for Celery's pydantic and extra options.
    cast(Any, celery.task)(
        name=name,
        shared=False,
        base=TypedTask,
        pydantic=True,
        input_model=input_model,
        output_model=Echo,
        **options,
    )(echo)


def test_every_task_documents_an_example_input() -> None:
    tasks = typed_tasks(create_app(load_settings("test")))
    assert {name for name, _ in documented_examples()} == set(tasks)


@pytest.mark.parametrize(("task", "example"), documented_examples())
def test_each_documented_example_is_valid_input(task: str, example: Any) -> None:
    typed = typed_tasks(create_app(load_settings("test")))[task]
    # Through JSON, as a worker receives it: strict fields refuse what Python would coerce.
    typed.input_model.model_validate_json(json.dumps(example))


def test_the_reference_states_each_task_from_its_code() -> None:
    text = reference(create_app(load_settings("test")))
    process = section(text, "process_data")
    assert "Turn one record into its message." in process
    assert f"- **Full name:** `{PACKAGE}.tasks.data.process_data`" in process
    assert "- **Queue:** `default`" in process
    assert "- **Retries:** none; a failure is final" in process
    assert "| `value` | integer | yes |  |  |  |" in process
    assert '```json\n{\n  "label": "answer",\n  "value": 42\n}\n```' in process
    thumbnail = section(text, "render_thumbnail")
    assert "- **Queue:** `cpu`" in thumbnail
    assert "soft from setting `tasks.cpu.soft_time_limit` (default 20 s)" in thumbnail
    assert "| `passes` | integer | no | `1` | ≥ 1, ≤ 1000000 |  |" in thumbnail
    assert (
        "- **Retries:** on `TransientError`, never on `TaskInputError`, at most 5 times, "
        "exponential backoff from 1 s, at most 60 s, with jitter"
    ) in section(text, "send_notification")
    assert "The whole value is array of `ProcessDataOutput`." in section(text, "summarize_batch")
    assert "- **Delivery:** no rate limit, result stored" in process
    assert (
        "- **Delivery:** at most 10/s per worker, dropped unrun 300 s after publishing, "
        "result stored"
    ) in section(text, "send_login_code")
    assert "no result stored" in section(text, "record_audit_event")


def test_the_reference_does_not_depend_on_the_profile(local_settings: Settings) -> None:
    test_profile = load_settings("test")
    assert test_profile.tasks.time_limit != local_settings.tasks.time_limit
    assert reference(create_app(test_profile)) == reference(create_app(local_settings))


def test_a_limit_set_on_the_task_is_shown_as_its_own(at_start_up: RegisterTasks) -> None:
    def register(celery: Celery) -> None:
        # Below the test profile's Redis visibility timeout (8 s), which start-up checks.
        options = {"time_limit": 6, "autoretry_for": (OSError,)}
        typed_test_task(celery, "extra.slow.echo", Echo, **options)

    at_start_up(register)
    echo_section = section(reference(create_app(load_settings("test"))), "echo")
    assert (
        "- **Time limits:** soft from setting `tasks.soft_time_limit` (default 60 s); "
        "hard 6 s (set on the task)"
    ) in echo_section
    assert "- **Retries:** on `OSError`, at most 3 times, 180 s apart" in echo_section
    assert "No example: add one to the input model" in echo_section


@pytest.mark.parametrize(
    ("schema", "words", "rules"),
    [
        (
            {"anyOf": [{"type": "integer", "maximum": 3}, {"type": "null"}]},
            "integer or null",
            ["≤ 3"],
        ),
        ({"enum": ["s", "m"], "type": "string"}, 'one of `"s"`, `"m"`', []),
        ({"const": 1}, "`1`", []),
        ({"allOf": [{"$ref": "#/$defs/Inner"}]}, "`Inner`", []),
        ({"type": "object", "additionalProperties": {"type": "number"}}, "object of number", []),
        ({"type": ["string", "null"], "pattern": "a|b"}, "string or null", ["matches `a|b`"]),
        (
            {"type": "array", "uniqueItems": True, "maxItems": 2},
            "array",
            ["items ≤ 2", "unique items"],
        ),
        ({}, "any", []),
    ],
)
def test_field_types_and_constraints_in_words(
    schema: dict[str, Any], words: str, rules: list[str]
) -> None:
    assert type_of(schema) == words
    assert constraints(schema) == rules


def test_a_pipe_in_a_cell_does_not_split_the_table(at_start_up: RegisterTasks) -> None:
    class Piped(TaskModel):
        """Input with a pattern holding a pipe."""

        code: Annotated[str, Field(pattern="^(a|b)$", description="one | two")]

    at_start_up(lambda celery: typed_test_task(celery, "extra.piped.piped", Piped))
    piped = section(reference(create_app(load_settings("test"))), "piped")
    assert "| `code` | string | yes |  | matches `^(a\\|b)$` | one \\| two |" in piped


@pytest.mark.parametrize("role", ["input", "output"])
def test_annotations_are_not_contract_changes(role: Literal["input", "output"]) -> None:
    class Before(TaskModel):
        value: int

    class After(TaskModel):
        """Now documented."""

        model_config = ConfigDict(title="Renamed", json_schema_extra={"examples": [{"value": 1}]})

        value: Annotated[int, Field(title="V", description="the value", examples=[2])]

    assert compare_schemas(Before.model_json_schema(), After.model_json_schema(), role) == []


# The command line: write the reference, and the gate that fails on a stale one.


def test_cli_docs_writes_what_check_expects() -> None:
    assert runner.invoke(app, ["contracts", "dump"]).exit_code == 0
    result = runner.invoke(app, ["contracts", "docs", "--profile", "test"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "wrote docs/tasks.md\n"
    written = Path("docs/tasks.md").read_text(encoding="utf-8")
    assert written == reference(create_app(load_settings("test")))
    assert runner.invoke(app, ["contracts", "check"]).exit_code == 0


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda path: path.write_text("# Task reference\n"), "docs/tasks.md is stale"),
        (lambda path: path.unlink(), "docs/tasks.md is missing"),
    ],
)
def test_cli_check_fails_naming_a_stale_or_missing_reference(edit: Any, problem: str) -> None:
    runner.invoke(app, ["contracts", "dump"])
    runner.invoke(app, ["contracts", "docs"])
    edit(Path("docs/tasks.md"))
    result = runner.invoke(app, ["contracts", "check"])
    assert result.exit_code == 1
    command = "uv run {{ cookiecutter.project_slug }} contracts docs"
    assert f"error: {problem}" in result.output
    assert f"; run `{command}` and commit it" in result.output
    assert "the code matches the committed contracts" not in result.output


def test_cli_check_names_the_sections_that_differ() -> None:
    runner.invoke(app, ["contracts", "dump"])
    runner.invoke(app, ["contracts", "docs"])
    path = Path("docs/tasks.md")
    text = path.read_text(encoding="utf-8")
    # An edited example in one section, a section gone, a section for no task.
    text = text.replace("## process_data\n", "## process_data\n\nEdited.\n", 1)
    start = text.index("\n## summarize_batch\n")
    end = text.index("\n## ", start + 1) if "\n## " in text[start + 1 :] else len(text)
    text = text[:start] + text[end:] + "\n## retired_task\n\nGone.\n"
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["contracts", "check"])
    assert result.exit_code == 1
    assert (
        "error: docs/tasks.md is stale: section summarize_batch missing; "
        "extra section retired_task (no such task); section process_data differs; run `"
    ) in result.output


def test_cli_docs_and_check_take_another_folder(tmp_path: Path) -> None:
    runner.invoke(app, ["contracts", "dump"])
    folder = tmp_path / "reference"
    assert runner.invoke(app, ["contracts", "docs", "--docs-dir", str(folder)]).exit_code == 0
    assert (folder / "tasks.md").is_file()
    result = runner.invoke(app, ["contracts", "check", "--docs-dir", str(folder)])
    assert result.exit_code == 0, result.output
