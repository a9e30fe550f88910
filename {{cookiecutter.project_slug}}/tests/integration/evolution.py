"""The next release's task models for the rolling-deploy test, and payloads from schemas.

Importing this module registers nothing: the test process uses it to compare the next
release with the committed contracts, and ``deploy_tasks`` (loaded by the worker
only) registers tasks with the same models.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, RootModel, create_model

from {{ cookiecutter.package_name }}.tasks.typed import (
    TypedTask,
)

Schema = dict[str, Any]

# Read by ``deploy_tasks`` in the worker: which evolution the next release makes.
EVOLUTION_VARIABLE = "DEPLOY_TEST_EVOLUTION"
# What ``deploy_tasks`` records in the ledger for each message, under its task id.
DELIVERED = "delivered"
RAN = "ran"
# The field each evolution adds to every evolvable input model, as pydantic's
# create_model takes it: (type, default), where ``...`` means required. Named so that
# no real model has them: a project's own `priority` or `tenant` field must not
# collide with the test's.
NEW_FIELDS: dict[str, tuple[str, tuple[type, Any]]] = {
    "compatible": ("next_release_optional", (int, 0)),
    "breaking": ("next_release_required", (str, ...)),
}


def evolvable(task: TypedTask[Any, Any]) -> bool:
    """Whether the task's input has fields to add to (a RootModel, such as a list, has none)."""
    return not issubclass(task.input_model, RootModel)


def evolve(model: type[BaseModel], evolution: str) -> type[BaseModel]:
    """``model`` with the field ``evolution`` adds; ValueError if it has that field already."""
    field, definition = NEW_FIELDS[evolution]
    if field in model.model_fields:
        raise ValueError(f"{model.__name__} already has a field {field!r}: rename it in NEW_FIELDS")
    new_model: type[BaseModel] = create_model(  # type: ignore[call-overload]  # fields by name
        model.__name__, __base__=model, __doc__=model.__doc__, **{field: definition}
    )
    return new_model


def examples(schema: Schema) -> list[Any]:
    """Values valid for ``schema``, the same on every run: the smallest and the largest.

    Written by hand: hypothesis-jsonschema, the library for this, fails on objects
    with current Hypothesis releases (it uses Hypothesis internals that changed).
    """
    return [_example(schema, schema, high) for high in (False, True)]


def _example(schema: Schema, root: Schema, high: bool) -> Any:
    """One value of ``schema``: fields, lengths and numbers at their low or high end."""
    while "$ref" in schema:
        schema = root["$defs"][schema["$ref"].removeprefix("#/$defs/")]
    if "examples" in schema:
        return schema["examples"][-1 if high else 0]
    if "const" in schema or "enum" in schema:
        values = schema.get("enum", [schema.get("const")])
        return values[-1 if high else 0]
    if "anyOf" in schema:
        return _example(schema["anyOf"][-1 if high else 0], root, high)
    kind = schema.get("type")
    if kind == "object":
        names = schema.get("properties", {}) if high else schema.get("required", [])
        return {name: _example(schema["properties"][name], root, high) for name in names}
    if kind == "array":
        size = max(schema.get("minItems", 0), 2 if high else 0)
        return [_example(schema.get("items", {}), root, high) for _ in range(size)]
    if kind in ("integer", "number"):
        return _number(schema, high)
    if kind == "string":
        return _string(schema, high)
    if kind == "boolean":
        return high
    if kind == "null":
        return None
    raise ValueError(f"no example for schema {schema!r}: add examples=[...] to its Field")


def _number(schema: Schema, high: bool) -> int:
    """The smallest or largest allowed integer (a wide default where unbounded)."""
    if high:
        if "maximum" in schema:
            return int(schema["maximum"])
        return int(schema.get("exclusiveMaximum", 2**53)) - 1
    if "minimum" in schema:
        return int(schema["minimum"])
    return int(schema.get("exclusiveMinimum", -(2**53))) + 1


def _string(schema: Schema, high: bool) -> str:
    """A string of the shortest or longest allowed length (capped), non-ASCII when long."""
    shortest: int = schema.get("minLength", 0)
    longest: int = schema.get("maxLength", 256)
    text = "é" * min(longest, 256) if high else "a" * shortest
    pattern = schema.get("pattern")
    if pattern is None:
        return text
    for candidate in (text, "a" * max(shortest, 1), "A0_-" * 8):
        if re.search(pattern, candidate) and shortest <= len(candidate) <= longest:
            return candidate
    raise ValueError(f"no example matches pattern {pattern!r}: add examples=[...] to its Field")
