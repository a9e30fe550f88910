"""Task contracts: each typed task's name, queue and JSON Schemas, and a compatibility gate.

In a rolling deploy, messages published by the old code are consumed by the new
code, and results written by the new code are read by callers still on the old
one. ``compare`` tells which changes between a committed contract and the code
keep both working. Inputs must still accept every old message: a narrower input
breaks. Outputs must still be readable by old callers: a wider output breaks.

Written here rather than taken from PyPI: the libraries that diff JSON Schemas
either answer only yes/no (jsoncompat) or diff the document's structure without
knowing which side reads and which writes (api-schema-diff, jsonschema-diff), so
none can name the task, field and rule that broke.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from celery import Celery

from .tasks.typed import short_name, typed_tasks

Role = Literal["input", "output"]
Schema = dict[str, Any]

CONTRACTS_DIR = Path("contracts")

# Bounds where a smaller value accepts less, and where a larger value does.
UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
# Keywords where any new or changed value may refuse what the old one accepted.
EXACT = ("pattern", "format", "multipleOf", "const")
# Only the keywords above, types, enums, items and fields are compared: title,
# description, examples and default document a schema without changing what it accepts.
JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}


@dataclass(frozen=True)
class Change:
    """One difference between a committed contract and the code."""

    task: str
    field: str
    rule: str
    breaking: bool

    def __str__(self) -> str:
        mark = "BREAKING" if self.breaking else "compatible"
        return f"{mark}: {self.task}: {self.field}: {self.rule}"


class ContractsMissingError(FileNotFoundError):
    """No committed contracts to compare with."""


def current_contracts(app: Celery) -> dict[str, Schema]:
    """The contract of each typed task of ``app``, by short name."""
    contracts: dict[str, Schema] = {}
    for name, task in sorted(typed_tasks(app).items()):
        queue = getattr(task, "queue", None)  # a task's own queue option, if it has one
        options = {"queue": queue} if queue else {}
        # The router decides where a call without an explicit queue goes: the same
        # answer producers get, so a changed route shows up as a moved task.
        route = app.amqp.router.route(options, task.name, (), {})
        contracts[name] = {
            "name": task.name,
            "short_name": short_name(task),
            "queue": route["queue"].name,
            "input": task.input_model.model_json_schema(),
            "output": task.output_model.model_json_schema(),
        }
    return contracts


def render(contract: Schema) -> str:
    """A contract as committed: sorted keys and fixed indentation, so diffs stay small."""
    return json.dumps(contract, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def dump(contracts: dict[str, Schema], folder: Path = CONTRACTS_DIR) -> list[Path]:
    """Write one ``<short name>.json`` per task, remove files of tasks that are gone."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, contract in contracts.items():
        path = folder / f"{name}.json"
        path.write_text(render(contract), encoding="utf-8")
        written.append(path)
    for stale in set(folder.glob("*.json")) - set(written):
        stale.unlink()
    return written


def unrecorded(contracts: dict[str, Schema], folder: Path = CONTRACTS_DIR) -> list[str]:
    """The files ``dump`` would write, change or remove in ``folder``, each with why.

    A contract that is compatible but not recorded is the baseline the next change
    is compared with: left stale, a later breaking change would be compared with an
    older contract and could pass.
    """
    expected = {folder / f"{name}.json": render(contract) for name, contract in contracts.items()}
    present = set(folder.glob("*.json")) if folder.is_dir() else set()
    found = []
    for path in sorted(expected.keys() | present):
        if path not in present:
            found.append(f"{path} (missing)")
        elif path not in expected:
            found.append(f"{path} (no such task)")
        elif path.read_text(encoding="utf-8") != expected[path]:
            found.append(f"{path} (differs)")
    return found


def load(folder: Path = CONTRACTS_DIR) -> dict[str, Schema]:
    """The committed contracts by short name; ContractsMissingError if there are none."""
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not files:
        raise ContractsMissingError(
            f"no task contracts in {folder}/: run `contracts dump` and commit the files"
        )
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in files}


def compare(old: dict[str, Schema], new: dict[str, Schema]) -> list[Change]:
    """Every change from the committed contracts ``old`` to the code's ``new``."""
    changes: list[Change] = []
    new_by_name = {contract["name"]: contract for contract in new.values()}
    old_names = {contract["name"] for contract in old.values()}
    for contract in old.values():
        task = contract["name"]
        current = new_by_name.get(task)
        if current is None:
            rule = "task removed or renamed: queued messages for it would find no task"
            changes.append(Change(task, "(task)", rule, breaking=True))
            continue
        if current["queue"] != contract["queue"]:
            rule = (
                f"moved from queue {contract['queue']!r} to {current['queue']!r}: "
                "messages waiting in the old queue would not be consumed"
            )
            changes.append(Change(task, "(queue)", rule, breaking=True))
        for role in ("input", "output"):
            for field, rule, breaking in compare_schemas(contract[role], current[role], role):
                changes.append(Change(task, field, rule, breaking))
    for task in sorted(new_by_name.keys() - old_names):
        changes.append(Change(task, "(task)", "new task", breaking=False))
    return changes


def compare_schemas(old: Schema, new: Schema, role: Role) -> list[tuple[str, str, bool]]:
    """The ``(field, rule, breaking)`` changes from ``old`` to ``new`` for one side."""
    changes = _Comparison(old, new, role).values(old, new, role, set())
    # dict.fromkeys: once each, in order (an enum of mixed types is one schema per type).
    return list(dict.fromkeys(changes))


class _Comparison:
    """One schema pair: ``$ref`` is resolved against each document's own ``$defs``."""

    def __init__(self, old_root: Schema, new_root: Schema, role: Role) -> None:
        self.roots = (old_root, new_root)
        self.role = role

    def resolve(self, schema: Schema, side: int) -> Schema:
        """The schema a local ``$ref`` (``#/$defs/Name``) points to."""
        while "$ref" in schema:
            name = schema["$ref"].removeprefix("#/$defs/")
            schema = self.roots[side].get("$defs", {})[name]
        return schema

    def branches(self, schema: Schema, side: int) -> dict[str, Schema]:
        """The schema split by JSON type; ``anyOf`` (an Optional, a union) merges branches."""
        schema = self.resolve(schema, side)
        alternatives = schema.get("anyOf") or schema.get("oneOf")
        if alternatives:
            merged: dict[str, Schema] = {}
            for alternative in alternatives:
                merged.update(self.branches(alternative, side))
            return merged
        if "allOf" in schema and len(schema["allOf"]) == 1:
            return self.branches(schema["allOf"][0], side)
        types = schema.get("type")
        if types is None:
            values = schema.get("enum", [schema["const"]] if "const" in schema else None)
            if values is None:
                return {"any": schema}
            types = sorted({JSON_TYPES.get(type(value), "any") for value in values})
        return dict.fromkeys([types] if isinstance(types, str) else types, schema)

    def change(self, field: str, rule: str, narrower: bool) -> tuple[str, str, bool]:
        """A change; a narrower input, or a wider output, breaks."""
        return field, rule, narrower == (self.role == "input")

    def values(
        self, old: Schema, new: Schema, field: str, seen: set[tuple[int, int]]
    ) -> Iterator[tuple[str, str, bool]]:
        """Changes in the values a field accepts (types, constraints, nested fields)."""
        if (id(old), id(new)) in seen:  # a recursive model: this pair is being compared
            return
        seen = seen | {(id(old), id(new))}
        before, after = self.branches(old, 0), self.branches(new, 1)
        if "any" in after and "any" not in before:
            yield self.change(field, f"type widened: {_types(before)} -> any", narrower=False)
            return
        if "any" in before and "any" not in after:
            yield self.change(field, f"type narrowed: any -> {_types(after)}", narrower=True)
            return
        lost = [kind for kind in before if _match(kind, after) is None]
        gained = [kind for kind in after if _match(kind, before) is None]
        if lost:
            rule = f"type narrowed: {_types(before)} -> {_types(after)}"
            yield self.change(field, rule, narrower=True)
        if gained:
            rule = f"type widened: {_types(before)} -> {_types(after)}"
            yield self.change(field, rule, narrower=False)
        for kind, schema in before.items():
            match = _match(kind, after)
            if match is not None and kind != "any":
                yield from self.constraints(schema, after[match], field)
                yield from self.nested(kind, schema, after[match], field, seen)

    def constraints(self, old: Schema, new: Schema, field: str) -> Iterator[tuple[str, str, bool]]:
        """Changed bounds, patterns, formats and enums of one type's branch."""
        for key in UPPER_BOUNDS + LOWER_BOUNDS:
            was, now = old.get(key), new.get(key)
            if was == now:
                continue
            if was is None or now is None:
                narrower = was is None
                rule = f"{key} {'added' if narrower else 'removed'} ({was if now is None else now})"
            else:
                narrower = (now < was) if key in UPPER_BOUNDS else (now > was)
                rule = f"{key} {'lowered' if now < was else 'raised'} ({was} -> {now})"
            yield self.change(field, rule, narrower)
        for key in EXACT:
            was, now = old.get(key), new.get(key)
            if was != now:
                narrower = now is not None
                yield self.change(field, f"{key} changed ({was!r} -> {now!r})", narrower)
        was_enum, now_enum = old.get("enum"), new.get("enum")
        if was_enum is not None and now_enum is None:
            yield self.change(field, "enum removed", narrower=False)
        elif now_enum is not None:
            removed = [value for value in was_enum or [] if value not in now_enum]
            added = [value for value in now_enum if was_enum is not None and value not in was_enum]
            if was_enum is None:
                yield self.change(field, f"enum added ({now_enum!r})", narrower=True)
            if removed:
                yield self.change(field, f"enum values removed ({removed!r})", narrower=True)
            if added:
                yield self.change(field, f"enum values added ({added!r})", narrower=False)
        if new.get("uniqueItems") and not old.get("uniqueItems"):
            yield self.change(field, "uniqueItems added", narrower=True)

    def nested(
        self, kind: str, old: Schema, new: Schema, field: str, seen: set[tuple[int, int]]
    ) -> Iterator[tuple[str, str, bool]]:
        """Array items and object fields, compared one level down."""
        if kind == "array" and "items" in old and "items" in new:
            yield from self.values(old["items"], new["items"], f"{field}[]", seen)
        if kind != "object":
            return
        old_fields, new_fields = old.get("properties", {}), new.get("properties", {})
        old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
        for name, schema in old_fields.items():
            path = f"{field}.{name}"
            if name not in new_fields:
                # Either side breaks: old messages carry the field (refused as extra),
                # old callers read it from results.
                yield path, f"removed {self.role} field", True
                continue
            if name in new_required and name not in old_required:
                yield self.change(path, "field became required", narrower=True)
            yield from self.values(schema, new_fields[name], path, seen)
        for name in [name for name in new_fields if name not in old_fields]:
            path = f"{field}.{name}"
            if self.role == "output" and old.get("additionalProperties") is False:
                # TaskModel forbids unknown fields: a caller on the old code would
                # refuse a result carrying this one.
                yield path, "new output field, refused by the old output model", True
            elif self.role == "output":
                yield path, "new output field", False
            elif name in new_required:
                yield path, "new required input field without a default", True
            else:
                yield path, "new optional input field", False


def _match(kind: str, branches: dict[str, Schema]) -> str | None:
    """The branch of ``branches`` that accepts values of type ``kind``, if any."""
    if kind in branches:
        return kind
    if kind == "integer" and "number" in branches:  # every integer is a number
        return "number"
    return None


def _types(branches: dict[str, Schema]) -> str:
    return "|".join(sorted(branches))
