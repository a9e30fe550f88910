"""``python -m benchmarks --size tiny``: every benchmark still runs and writes its files.

A handful of tasks each, against the test profile's broker: this proves the scripts
work, and judges no number (benchmarks print measurements; tests do not time things).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
)

pytestmark = pytest.mark.integration
PROJECT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)  # it starts about ten workers, one after another
def test_every_benchmark_runs_at_a_tiny_size(broker_app: ProjectCelery, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "benchmarks", "--size=tiny", f"--output={tmp_path}"]
    done = subprocess.run(  # noqa: S603 - our own command line
        command, cwd=PROJECT, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (run,) = tmp_path.glob("*-tiny.json")
    document = json.loads(run.read_text())
    throughput = {row["variant"]: row for row in document["throughput"]}
    expected = {"bare Celery, defaults", "project, typed task", "project, plain task"}
    assert expected <= set(throughput)
    assert all(row["tasks_per_second"] > 0 for row in throughput.values())
    layers = {row["layer"]: row["us_per_task"] for row in document["layers"]}
    assert layers["typed task body: input validated, output dumped"] > 0
    assert layers["metrics of a run (metrics.enabled)"] > 0
    assert [row["payload"] for row in document["payload"]["rows"]] == ["100 B", "10 KB", "1 MB"]
    assert "tasks.max_payload_bytes" in document["payload"]["default_limit_refuses_largest"]
    leak = document["soak"]["leak"]
    assert set(leak) == {"no guard", "guard"}
    {%- if cookiecutter.include_api %}
    assert set(document["api"]["api_ms"]) == {"p50", "p95", "p99"}
    {%- endif %}
    broker = broker_app.settings.broker.scheme
    table = (tmp_path / f"{broker}.md").read_text()
    assert "| bare Celery, defaults |" in table
    assert "| metrics of a run (metrics.enabled) | worker |" in table
    assert (tmp_path / f"{broker}.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
