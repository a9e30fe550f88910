"""mypy --strict catches a typed task called with the wrong argument type.

It also keeps ``get(propagate=False)`` honest: that call may return the exception.
"""

from __future__ import annotations

from pathlib import Path

from ..conftest import Project

PROBE = """
from {package}.tasks.data import ProcessDataInput, ProcessDataOutput, process_data

good: ProcessDataOutput = process_data.delay(ProcessDataInput(value=1, label="a")).get()
from_dict = process_data.delay({{"value": 1, "label": "a"}})
from_int = process_data.delay(42)
wrong_output: int = process_data.delay(ProcessDataInput(value=1, label="a")).get()
stored: ProcessDataOutput = process_data.AsyncResult("id").get()
or_error: ProcessDataOutput = process_data.AsyncResult("id").get(propagate=False)
"""


def test_mypy_rejects_wrong_calls_and_accepts_right_ones(
    installed: Project, tmp_path: Path
) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE.format(package=installed.package))
    result = installed.run("uv", "run", "--frozen", "mypy", str(probe), check=False)
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert result.returncode == 1
    assert [line.split(":")[1] for line in errors] == ["5", "6", "7", "9"], result.stdout
    assert all('"ProcessDataInput"' in line for line in errors[:2])
    assert '"ProcessDataOutput"' in errors[2]
    assert '"ProcessDataOutput | BaseException"' in errors[3]
