"""Every example input of the task reference (docs/tasks.md), through a real worker.

The examples live in the input models, so the contract, {% if cookiecutter.include_api %}the API's OpenAPI schema, {% endif %}and
the reference show the same ones; here each is sent as another producer would send
it (JSON, by task name) and must succeed with an output the committed contract allows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
)
from {{ cookiecutter.package_name }}.contracts import (
    load,
)

pytestmark = pytest.mark.integration
TIMEOUT = 30
CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


def documented_examples() -> list[tuple[str, Any]]:
    """``(task, example)`` for each example input of each committed contract."""
    return [
        (name, example)
        for name, contract in sorted(load(CONTRACTS).items())
        for example in contract["input"].get("examples", [])
    ]


@pytest.mark.parametrize(("task", "example"), documented_examples())
def test_each_documented_example_succeeds_on_a_worker(
    worker_app: ProjectCelery, task: str, example: Any
) -> None:
    contract = load(CONTRACTS)[task]
    # ignore_result=False: a fire-and-forget task stores its result only when asked.
    result = worker_app.send_task(contract["name"], args=[example], ignore_result=False)
    output = result.get(timeout=TIMEOUT, propagate=False)
    assert result.state == "SUCCESS", output
    Draft202012Validator(contract["output"]).validate(output)
