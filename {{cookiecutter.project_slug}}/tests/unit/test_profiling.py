"""`profile` runs a task in this process and finds the thumbnail leak, with either tool."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import (
    app,
)
from {{ cookiecutter.package_name }}.config import (
    ConfigError,
    load_settings,
)
from {{ cookiecutter.package_name }}.config.settings import (
    ENV_PREFIX,
)
from {{ cookiecutter.package_name }}.tasks import (
    media,
)

runner = CliRunner()
THUMBNAIL = json.dumps({"source_id": "profiled", "width": 256, "height": 256})
LEAK = f"{ENV_PREFIX}TASKS__LEAK_THUMBNAILS"


def leaking_line() -> str:
    """file:line of the statement that keeps each call's pixels."""
    lines = Path(media.__file__).read_text().splitlines()
    (number,) = [n for n, line in enumerate(lines, 1) if "_PIXELS_FOR_RETRY[" in line]
    return f"tasks/media.py:{number}"


@pytest.fixture(params=["memray", "tracemalloc"])
def tool(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each measuring tool: memray where it is installed (Linux), tracemalloc always."""
    if request.param == "memray" and importlib.util.find_spec("memray") is None:
        if sys.platform == "linux":
            pytest.fail("memray is a development dependency on Linux: run uv sync")
        pytest.skip("memray is installed on Linux only")
    if request.param == "tracemalloc":
        monkeypatch.setitem(sys.modules, "memray", None)  # import memray raises ImportError
    return str(request.param)


def profile(*options: str) -> tuple[int, str, str]:
    """Run `profile render_thumbnail` in this process: exit code, stdout, stderr."""
    result = runner.invoke(app, ["profile", "render_thumbnail", "--json", THUMBNAIL, *options])
    return result.exit_code, result.stdout, result.stderr


def test_memory_profile_flags_the_leak_and_names_its_line(
    tool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LEAK, "true")
    code, out, err = profile("--runs", "10", "--memory", "--top", "3")
    assert code == 1, out + err
    summary, top_site, *_ = out.splitlines()
    per_call, _, rest = summary.removeprefix("render_thumbnail: ").partition(" more held per call")
    assert per_call.endswith(" KiB")
    assert float(per_call.removesuffix(" KiB")) >= 64  # 256 * 256 bytes each call
    assert f", {tool}), above --max-growth 1 KiB" in rest
    assert top_site.endswith(leaking_line()), top_site
    assert "render_thumbnail holds more memory after every call: a leak" in err


def test_memory_profile_passes_the_task_without_the_leak(tool: str) -> None:
    code, out, err = profile("--runs", "10", "--memory")
    assert code == 0, out + err
    assert f", {tool}), within --max-growth 1 KiB" in out.splitlines()[0]
    assert leaking_line() not in out


def test_the_leak_holds_resident_memory_as_the_incidents_did(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The memory guard (worker.max_memory_per_child) reads resident memory: a leak that
    # only reserved address space would never trip it, and would teach the wrong lesson.
    monkeypatch.setenv(LEAK, "true")
    monkeypatch.setattr(media, "_PIXELS_FOR_RETRY", {})  # freed again after the test
    megapixel = json.dumps({"source_id": "profiled", "width": 1000, "height": 1000})
    before = psutil.Process().memory_info().rss
    result = runner.invoke(
        app, ["profile", "render_thumbnail", "--json", megapixel, "--runs", "64"]
    )
    assert result.exit_code == 0, result.output
    # Half of what it kept: pages freed earlier in this process get reused first.
    assert psutil.Process().memory_info().rss - before >= 32 * 1_000_000


def test_cpu_profile_shows_the_hottest_functions() -> None:
    heavy = json.dumps({"source_id": "profiled", "width": 8, "height": 8, "passes": 20000})
    result = runner.invoke(
        app, ["profile", "render_thumbnail", "--json", heavy, "--runs", "3", "--cpu"]
    )
    assert result.exit_code == 0, result.output
    assert "Ordered by: internal time" in result.stdout
    # The hashing loop is where the time goes: its own line and its callee's come first.
    rows = [line for line in result.stdout.splitlines() if "(" in line and "." in line]
    assert any("render_pixels" in row for row in rows[:4]), result.stdout


def test_timing_alone_and_bad_requests() -> None:
    code, out, _ = profile("--runs", "2")
    assert code == 0
    assert out.startswith("render_thumbnail: 2 runs, ")
    code, _, err = profile("--memory", "--cpu")
    assert (code, err) == (
        2,
        "error: pass --memory or --cpu, not both: each profiler would skew the other\n",
    )
    bad = runner.invoke(app, ["profile", "render_thumbnail", "--json", '{"width": 0}'])
    assert bad.exit_code == 2
    assert "error: invalid input for render_thumbnail:" in bad.stderr
    assert "source_id: Field required" in bad.stderr


def test_production_refuses_the_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LEAK, "true")
    with pytest.raises(ConfigError) as refused:
        load_settings("production", env_file=None)
    assert (
        f"tasks.leak_thumbnails ({LEAK}, from environment): leaks memory on purpose, "
        "for practice; remove it"
    ) in str(refused.value).splitlines()
