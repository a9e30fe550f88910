"""The task reference: ``docs/tasks.md``, written from the task contracts and task objects.

One section per typed task: what it does, where it runs, its limits and retries, its
input and output fields, and an example input. Everything comes from the code, so
``contracts check`` can tell when the committed file is stale. The file must not
depend on the profile that wrote it: a time limit the task does not set itself is
shown as the setting it comes from, with that setting's default.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from celery import Celery

from .config import Settings
from .contracts import Schema, current_contracts
from .tasks.typed import TypedTask, typed_tasks

DOCS_DIR = Path("docs")
REFERENCE_FILE = "tasks.md"
LIMITS = (("soft_time_limit", "soft"), ("time_limit", "hard"))
# How each JSON Schema constraint reads in a field table.
CONSTRAINTS = {
    "minimum": "≥ {}",
    "exclusiveMinimum": "> {}",
    "maximum": "≤ {}",
    "exclusiveMaximum": "< {}",
    "multipleOf": "multiple of {}",
    "minLength": "length ≥ {}",
    "maxLength": "length ≤ {}",
    "pattern": "matches `{}`",
    "format": "format {}",
    "minItems": "items ≥ {}",
    "maxItems": "items ≤ {}",
    "minProperties": "fields ≥ {}",
    "maxProperties": "fields ≤ {}",
}

HEADER = """\
# Task reference

Generated from the code by `contracts docs` (see the README, Task contracts); do not
edit by hand. `contracts check` fails when this file is stale. Each example input is
submitted to a real worker by the integration tests.
"""


def reference(app: Celery) -> str:
    """The Markdown of ``docs/tasks.md``: one section per typed task, by short name."""
    contracts = current_contracts(app)
    tasks = typed_tasks(app)
    sections = [task_section(tasks[name], contracts[name]) for name in sorted(contracts)]
    return "\n".join([HEADER, *sections])


def write(app: Celery, folder: Path = DOCS_DIR) -> Path:
    """Write the reference into ``folder`` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / REFERENCE_FILE
    path.write_text(reference(app), encoding="utf-8")
    return path


def staleness(app: Celery, folder: Path = DOCS_DIR) -> str | None:
    """Why the committed reference differs from what ``write`` would produce, or None."""
    path = folder / REFERENCE_FILE
    if not path.is_file():
        return f"{path} is missing"
    committed, expected = path.read_text(encoding="utf-8"), reference(app)
    if committed == expected:
        return None
    return f"{path} is stale: {'; '.join(section_differences(committed, expected))}"


def sections(text: str) -> dict[str, str]:
    """The reference split by ``## `` heading (the header as ``(header)``)."""
    header, *rest = text.split("\n## ")
    found = {"(header)": header}
    for section in rest:
        title, _, _ = section.partition("\n")
        found[title.strip()] = section
    return found


def section_differences(committed: str, expected: str) -> list[str]:
    """Which sections of the committed reference differ from the code's, in words."""
    old, new = sections(committed), sections(expected)
    words = [f"section {name} missing" for name in new if name not in old]
    words += [f"extra section {name} (no such task)" for name in old if name not in new]
    words += [f"section {name} differs" for name in new if name in old and old[name] != new[name]]
    # Same sections, same text: only the order or the separators differ.
    return words or ["the sections are out of order"]


def task_section(task: TypedTask[Any, Any], contract: Schema) -> str:
    """The section of one task."""
    doc = inspect.cleandoc(task.__doc__ or "") or "(no docstring)"
    facts = [
        f"- **Full name:** `{contract['name']}`",
        f"- **Queue:** `{contract['queue']}`",
        f"- **Time limits:** {time_limits(task)}",
        f"- **Retries:** {retry_policy(task)}",
        f"- **Delivery:** {delivery_options(task)}",
    ]
    return "\n".join(
        [
            f"## {contract['short_name']}\n",
            f"{doc}\n",
            *facts,
            "",
            model_section("Input", contract["input"], examples=True),
            model_section("Output", contract["output"], examples=False),
        ]
    )


def time_limits(task: TypedTask[Any, Any]) -> str:
    """Each limit: the task's own value, else the setting that fills it in and its default."""
    from_settings: dict[str, str] = getattr(task, "time_limit_settings", {})
    parts = []
    for attribute, label in LIMITS:
        key = from_settings.get(attribute)
        if key is None:
            parts.append(f"{label} {getattr(task, attribute):g} s (set on the task)")
        else:
            parts.append(f"{label} from setting `{key}` (default {setting_default(key):g} s)")
    return "; ".join(parts)


def setting_default(key: str) -> Any:
    """The default of a dotted settings key, from the settings model (no profile read)."""
    first, *rest = key.split(".")
    value = Settings.model_fields[first].default
    for part in rest:
        value = getattr(value, part)
    return value


def retry_policy(task: TypedTask[Any, Any]) -> str:
    """Celery's automatic retry options of the task, in words."""
    retry_on = tuple(getattr(task, "autoretry_for", ()))
    if not retry_on:
        return "none; a failure is final"
    words = [f"on {names(retry_on)}"]
    never = tuple(getattr(task, "dont_autoretry_for", ()))
    if never:
        words.append(f"never on {names(never)}")
    words.append(f"at most {task.max_retries} times" if task.max_retries is not None else "forever")
    backoff = getattr(task, "retry_backoff", False)
    if backoff:
        # Celery reads retry_backoff=True as a factor of 1 second.
        cap = getattr(task, "retry_backoff_max", 600)
        words.append(f"exponential backoff from {int(backoff)} s, at most {cap} s")
        if getattr(task, "retry_jitter", True):
            words.append("with jitter")
    else:
        words.append(f"{task.default_retry_delay} s apart")
    return ", ".join(words)


def delivery_options(task: TypedTask[Any, Any]) -> str:
    """Rate limit, expiry and whether a result is stored, in words."""
    words = [f"at most {task.rate_limit} per worker" if task.rate_limit else "no rate limit"]
    if task.expires is not None:
        words.append(f"dropped unrun {task.expires} s after publishing")
    words.append("no result stored" if task.ignore_result else "result stored")
    return ", ".join(words)


def names(classes: tuple[type, ...]) -> str:
    """Exception classes as code."""
    return ", ".join(f"`{cls.__name__}`" for cls in classes)


def model_section(role: str, schema: Schema, *, examples: bool) -> str:
    """A model's description, fields (and nested models), and its examples."""
    lines = [f"### {role}: `{schema.get('title', role)}`\n"]
    lines += model_body(schema)
    for name, nested in sorted(schema.get("$defs", {}).items()):
        lines += [f"#### `{name}`\n", *model_body(nested)]
    if examples:
        lines += example_lines(schema)
    return "\n".join(lines)


def model_body(schema: Schema) -> list[str]:
    """Description and field table of one model (or what a non-object input is)."""
    lines = [f"{schema['description']}\n"] if schema.get("description") else []
    if "properties" not in schema:
        return [*lines, f"The whole value is {type_of(schema)}.\n"]
    lines += [
        "| Field | Type | Required | Default | Constraints | Description |",
        "|---|---|---|---|---|---|",
    ]
    required = set(schema.get("required", []))
    for name, field in schema["properties"].items():
        default = f"`{json.dumps(field['default'])}`" if "default" in field else ""
        cells = [
            f"`{name}`",
            type_of(field),
            "yes" if name in required else "no",
            default,
            ", ".join(constraints(field)),
            field.get("description", ""),
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return [*lines, ""]


def type_of(schema: Schema) -> str:
    """A field's type in words: models by name, unions with ``or``."""
    if "$ref" in schema:
        return f"`{schema['$ref'].removeprefix('#/$defs/')}`"
    for union in ("anyOf", "oneOf"):
        if union in schema:
            return " or ".join(type_of(branch) for branch in schema[union])
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return type_of(schema["allOf"][0])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{json.dumps(value)}`" for value in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items")
        return f"array of {type_of(items)}" if items else "array"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {type_of(schema['additionalProperties'])}"
    if isinstance(kind, list):
        return " or ".join(kind)
    return str(kind or "any")


def constraints(schema: Schema) -> list[str]:
    """Every constraint of a field, its union branches' included."""
    found = [template.format(schema[key]) for key, template in CONSTRAINTS.items() if key in schema]
    if schema.get("uniqueItems"):
        found.append("unique items")
    for union in ("anyOf", "oneOf"):
        for branch in schema.get(union, []):
            found += constraints(branch)
    return found


def example_lines(schema: Schema) -> list[str]:
    """The model's examples as JSON blocks, or a note that it has none."""
    examples = schema.get("examples", [])
    if not examples:
        return ["No example: add one to the input model (see the README, Task contracts).\n"]
    lines = ["Example input:\n"]
    for example in examples:
        lines += ["```json", json.dumps(example, indent=2, ensure_ascii=False), "```\n"]
    return lines
