"""benchmarks/time_to_green.py still works, and follows CONTRIBUTING's first commands.

A tiny run (one test module instead of ``make test``): the script is a benchmark, so
this proves it runs and reports each phase, and judges no number.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from benchmarks import time_to_green

from ..conftest import tool_env
from ..markdown import code_blocks, commands, section
from ..matrix import TEMPLATE

QUICK_TEST = "uv run --frozen pytest -q -p no:cacheprovider --no-cov tests/unit/test_config.py"


def test_the_setup_phase_is_contributings_first_block(tmp_path: Path) -> None:
    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(tmp_path)))
    setup = section((project / "CONTRIBUTING.md").read_text(), "1. Set up")
    assert commands(code_blocks(setup, "bash")[0]) == time_to_green.SETUP


@pytest.mark.slow
def test_time_to_green_times_each_phase(tmp_path: Path) -> None:
    output = tmp_path / "timings.json"
    script = TEMPLATE / "benchmarks" / "time_to_green.py"
    command = [sys.executable, str(script), f"--test-command={QUICK_TEST}", f"--output={output}"]
    done = subprocess.run(
        command, env=tool_env(), capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    seconds = json.loads(output.read_text())["seconds"]
    assert list(seconds) == ["render", "setup", "test", "total"]
    assert seconds["total"] == pytest.approx(sum(seconds[p] for p in ("render", "setup", "test")))
    assert "time to green (redis, api=yes" in done.stdout
