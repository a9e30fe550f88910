"""benchmarks/: what a run's numbers count, and which tables a partial run replaces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import report
from benchmarks.workers import RunningWorker

BOX = {
    "cpu": "Test CPU",
    "cpus": 2,
    "memory_gib": 8.0,
    "system": "Linux",
    "python": "3.12.0",
    "celery": "5.5.0",
    "kombu": "5.5.0",
    "broker": "redis",
}


def layer(name: str, micros: float) -> dict[str, Any]:
    """One row of the layers benchmark."""
    return {"side": "worker", "layer": name, "us_per_task": micros}


def run(folder: Path, results: dict[str, Any], box: dict[str, Any] = BOX) -> str:
    """``report.write`` on ``box``; the Markdown it leaves."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(report, "machine", lambda: box)
        written = report.write(results, "full", folder)
    assert [path.suffix for path in written] == [".json", ".md"]  # nothing here to plot
    return written[1].read_text()


def test_a_partial_run_keeps_the_other_benchmarks_tables(tmp_path: Path) -> None:
    refusal = "process_data: arguments are 1,000,011 bytes"
    payload = {"rows": [], "default_limit_refuses_largest": refusal}
    run(tmp_path, {"layers": [layer("old layer", 1.0)], "payload": payload})

    table = run(tmp_path, {"layers": [layer("new layer", 2.0)]})

    assert "| new layer | worker | 2.0 |" in table
    assert "old layer" not in table
    assert refusal in table  # from the first run, which the second did not repeat
    assert len(list(tmp_path.glob("*-redis-full.json"))) == 2  # both runs kept, to the µs


def test_runs_on_another_machine_are_not_mixed_in(tmp_path: Path) -> None:
    run(tmp_path, {"layers": [layer("elsewhere", 1.0)]}, BOX | {"celery": "5.4.0"})

    table = run(tmp_path, {"layers": [layer("here", 2.0)]})

    assert "elsewhere" not in table
    assert "| here | worker | 2.0 |" in table


def test_worker_cpu_counts_pool_processes_that_have_exited() -> None:
    # A "worker" whose one "pool process" burns CPU and exits (reaped, as billiard does
    # when it recycles one) before the worker's CPU is read.
    child = "total = sum(range(4 * 10**7))"
    worker = (
        "import subprocess, sys, time\n"
        f"subprocess.run([sys.executable, '-c', {child!r}], check=True)\n"
        "print('reaped', flush=True)\n"
        "time.sleep(60)\n"
    )
    with subprocess.Popen(  # noqa: S603 - our own command line
        [sys.executable, "-c", worker], stdout=subprocess.PIPE
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline() == b"reaped\n"
            burnt = RunningWorker(process, "worker@test").cpu_seconds()
        finally:
            process.kill()
    assert burnt > 0.2  # the child's sum; the worker itself only started Python
