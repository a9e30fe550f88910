"""mypy --strict checks every way of calling a typed task, and types results truthfully.

Two probe files, checked in one mypy run: WRONG holds one wrong call per call path,
each marked ``# E: <word>`` (a word of the message mypy must report on that line, and
on no other); RIGHT holds the same call paths used correctly, and must pass cleanly.
Results that are dicts at run time (``apply().get()``) or depend on the result backend
(a group's ``get()``: models on the file backend, dicts on Redis) are typed ``Any``
rather than as models, so RIGHT only annotates what is really returned; the README's
ways to a group's models (``group_outputs``, each of ``.results``) are in RIGHT too.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from ..conftest import Project

IMPORTS = """
from typing import Any

from celery import chain, chord, group

from {package}.tasks.data import (
    BatchSummary,
    ProcessDataInput,
    ProcessDataOutput,
    batch_chord,
    fan_out,
    ordered_chain,
    process_batch,
    process_data,
    process_in_order,
    record_failure,
    summarize_batch,
)

RECORD = ProcessDataInput(value=1, label="a")
"""

WRONG = """
process_data(42)  # E: "ProcessDataInput"
process_data.delay(42)  # E: "ProcessDataInput"
process_data.delay({{"value": 1, "label": "a"}})  # E: "ProcessDataInput"
process_data.apply_async((42,))  # E: "tuple[ProcessDataInput]"
process_data.apply_async((RECORD,), {{"payload": RECORD}})  # E: "None"
process_data.s(42)  # E: overload
process_data.si(42)  # E: "ProcessDataInput"
chain(process_data.si(RECORD), process_data.si(7))  # E: "ProcessDataInput"
group(process_data.s(RECORD), process_data.s({{"value": 1}}))  # E: overload
chord([process_data.s(RECORD)])(summarize_batch.s(RECORD))  # E: overload
process_in_order([42])  # E: "ProcessDataInput"
wrong_output: int = process_data.delay(RECORD).get()  # E: "ProcessDataOutput"
maybe_error: ProcessDataOutput = process_data.delay(RECORD).get(propagate=False)  # E: BaseException
stored: ProcessDataOutput = process_data.AsyncResult("id").get(propagate=False)  # E: BaseException
summary: ProcessDataOutput = process_batch([RECORD]).get()  # E: "BatchSummary"
batch: list[BatchSummary] = process_data.group_outputs(fan_out([RECORD]))  # E: "list
"""

RIGHT = """
output: ProcessDataOutput = process_data(RECORD)
output = process_data.delay(RECORD).get(timeout=1)
output = process_data.apply_async((RECORD,), countdown=1).get()
output = process_data.AsyncResult("id").get()
or_error: ProcessDataOutput | BaseException = process_data.delay(RECORD).get(propagate=False)
summary: BatchSummary = process_batch([RECORD]).get()
output = process_in_order([RECORD]).get()
joined: list[Any] = fan_out([RECORD]).get()
models: list[ProcessDataOutput] = process_data.group_outputs(fan_out([RECORD]), timeout=1)
for child in fan_out([RECORD]).results or ():
    each: Any = child.get(timeout=1)
stored_json: Any = process_data.apply((RECORD,)).get()
chain(process_data.si(RECORD), process_data.si(RECORD)).apply_async()
group(process_data.s(RECORD), process_data.s(RECORD)).apply_async()
chord([process_data.s(RECORD)])(summarize_batch.s().on_error(record_failure.s()))
batch_chord([process_data.s(RECORD)]).apply_async()
ordered_chain([process_data.si(RECORD)]).apply_async()
"""


def expected_errors(source: str) -> dict[int, str]:
    """Line number -> the word its ``# E:`` marker says mypy must report."""
    return {
        number: marker.group(1)
        for number, line in enumerate(source.splitlines(), start=1)
        if (marker := re.search(r"# E: (\S+)$", line))
    }


def errors_in(result: subprocess.CompletedProcess[str], file: Path) -> dict[int, list[str]]:
    """The error messages mypy reported for one file, by line number."""
    found: dict[int, list[str]] = {}
    for line in result.stdout.splitlines():
        path, _, rest = line.partition(":")
        if Path(path).name == file.name and ": error:" in rest:
            number, _, message = rest.partition(":")
            found.setdefault(int(number), []).append(message)
    return found


def test_mypy_rejects_each_wrong_call_and_accepts_the_right_ones(
    installed: Project, tmp_path: Path
) -> None:
    header = IMPORTS.format(package=installed.package)
    wrong, right = tmp_path / "wrong_calls.py", tmp_path / "right_calls.py"
    wrong.write_text(header + WRONG.format())
    right.write_text(header + RIGHT)
    result = installed.run(
        "uv", "run", "--frozen", "mypy", "--strict", str(wrong), str(right), check=False
    )
    assert errors_in(result, right) == {}, result.stdout
    expected = expected_errors(wrong.read_text())
    reported = errors_in(result, wrong)
    assert sorted(reported) == sorted(expected), result.stdout
    for number, word in expected.items():
        assert any(word in message for message in reported[number]), (number, reported[number])
