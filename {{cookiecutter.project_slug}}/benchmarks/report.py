"""A run's results as JSON (everything), Markdown (the tables) and PNG (the plots)."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psutil
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from {{ cookiecutter.package_name }}.config import (
    load_settings,
)

RUN_KEYS = {"date", "size", "machine"}  # what a run's JSON holds besides its results


def machine() -> dict[str, Any]:
    """Where the numbers came from."""
    return {
        "cpu": _cpu_model(),
        "cpus": psutil.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "celery": version("celery"),
        "kombu": version("kombu"),
        "broker": load_settings("test", env_file=None).broker.scheme,
    }


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def write(results: dict[str, Any], size: str, folder: Path) -> list[Path]:
    """Write the run's JSON (dated); then the broker's Markdown and PNG, from ``latest``.

    The paths written: no PNG when nothing there has a plot (layers, payload, api).
    """
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    box = machine()
    run = {"date": now.isoformat(timespec="seconds"), "size": size, "machine": box}
    broker = box["broker"]
    run_path = folder / f"{now:%Y%m%dT%H%M%S.%fZ}-{broker}-{size}.json"
    run_path.write_text(json.dumps(run | results, indent=2) + "\n")
    document = latest(folder, size, box)
    tables = folder / f"{broker}.md"
    tables.write_text(markdown(document))
    plotted = folder / f"{broker}.png"
    return [run_path, tables, *([plotted] if plot(document, plotted) else [])]


def latest(folder: Path, size: str, box: dict[str, Any]) -> dict[str, Any]:
    """Each benchmark's newest run in ``folder`` at this size on this machine, together.

    So a run of some benchmarks (``--only``) replaces their tables and keeps the others'.
    A run on another machine, or with another Python or Celery, is not mixed in.
    """
    document: dict[str, Any] = {"size": size, "machine": box, "dates": {}}
    # The file names start with the UTC time, so they sort oldest first.
    for path in sorted(folder.glob(f"*-{box['broker']}-{size}.json")):
        run = json.loads(path.read_text())
        if run["machine"] != box:
            continue
        for name in run.keys() - RUN_KEYS:
            document[name] = run[name]
            document["dates"][name] = run["date"][:10]
    return document


def _measured_on(document: dict[str, Any]) -> str:
    """The day the tables were measured, or the first and last of them."""
    days = sorted(set(document["dates"].values()))
    return days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"


def markdown(document: dict[str, Any]) -> str:
    """The tables of a run, headed by the machine it ran on."""
    box = document["machine"]
    measured = (
        f"Measured {_measured_on(document)} on {box['cpu']}, {box['cpus']} CPUs, "
        f"{box['memory_gib']} GiB, {box['system']}; Python {box['python']}, Celery "
        f"{box['celery']}, {box['broker']}; size {document['size']}."
    )
    lines = [measured, ""]
    if "throughput" in document:
        lines += _throughput(document["throughput"])
    if "layers" in document:
        lines += _layers(document["layers"])
    if "payload" in document:
        lines += _payload(document["payload"])
    if "soak" in document:
        lines += _soak(document["soak"])
    if "api" in document:
        lines += _api(document["api"])
    return "\n".join(lines)


def _table(header: list[str], rows: list[list[str]], text_columns: int = 1) -> list[str]:
    """A Markdown table: the first ``text_columns`` left-aligned, the numbers right."""
    aligned = ["---"] * text_columns + ["---:"] * (len(header) - text_columns)
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(aligned) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]


def _throughput(rows: list[dict[str, Any]]) -> list[str]:
    by_name = {row["variant"]: row for row in rows}
    lines = _table(
        ["variant", "tasks/s", "rounds", "vs bare", "enqueued/s", "worker CPU ms/task"],
        [
            [
                row["variant"],
                f"{row['tasks_per_second']:.0f}",
                f"{row['slowest']:.0f} to {row['fastest']:.0f}",
                f"{row['vs_bare']:.2f}",
                f"{row['enqueue_per_second']:.0f}",
                f"{row['cpu_ms_per_task']:.2f}",
            ]
            for row in rows
        ],
    )
    typed, plain = by_name.get("project, typed task"), by_name.get("project, plain task")
    if typed and plain:
        end_to_end = typed["tasks_per_second"] / plain["tasks_per_second"]
        enqueued = typed["enqueue_per_second"] / plain["enqueue_per_second"]
        lines += [f"Typed over plain: {end_to_end:.2f} end to end, {enqueued:.2f} enqueued.", ""]
    return lines


def _layers(rows: list[dict[str, Any]]) -> list[str]:
    return _table(
        ["layer, timed in process", "where", "µs per task"],
        [[row["layer"], row["side"], f"{row['us_per_task']:.1f}"] for row in rows],
        text_columns=2,
    )


def _payload(payload: dict[str, Any]) -> list[str]:
    lines = _table(
        ["payload", "tasks", "tasks/s", "MB/s", "worker CPU ms/task"],
        [
            [
                row["payload"],
                str(row["tasks"]),
                f"{row['tasks_per_second']:.0f}",
                f"{row['megabytes_per_second']:.1f}",
                f"{row['cpu_ms_per_task']:.2f}",
            ]
            for row in payload["rows"]
        ],
    )
    return [*lines, f"Under the default limit: `{payload['default_limit_refuses_largest']}`", ""]


def _soak(soak: dict[str, Any]) -> list[str]:
    samples = soak["process_data"]["samples"]
    summary = (
        f"Soak, process_data, no recycling: {samples[0]['rss_mib']:.1f} MiB after the first "
        f"{soak['process_data']['batch']} tasks, {samples[-1]['rss_mib']:.1f} MiB after "
        f"{samples[-1]['tasks']}: {soak['process_data']['growth'] * 100:+.1f} %."
    )
    lines = [summary, ""]
    rows = []
    for name, run in soak["leak"].items():
        rss = [sample["rss_mib"] for sample in run["samples"]]
        rows.append(
            [
                name,
                str(run["samples"][-1]["tasks"]),
                f"{rss[0]:.0f}",
                f"{max(rss):.0f}",
                f"{rss[-1]:.0f}",
                str(run["pool_processes_seen"]),
            ]
        )
    return lines + _table(
        [
            "leaking render_thumbnail",
            "tasks",
            "MiB first",
            "MiB peak",
            "MiB last",
            "pool processes",
        ],
        rows,
    )


def _api(api: dict[str, Any]) -> list[str]:
    rows = [
        [side, *(f"{api[key][p]:.2f}" for p in ("p50", "p95", "p99"))]
        for side, key in (("direct", "direct_ms"), ("API", "api_ms"), ("API adds", "api_adds_ms"))
    ]
    return [
        f"Enqueue latency in ms, {api['clients']} client processes, {api['requests']} requests:",
        "",
        *_table(["", "p50", "p95", "p99"], rows),
    ]


def plot(document: dict[str, Any], path: Path) -> bool:
    """Throughput per variant; resident memory over the soak, and over the leak.

    False, and nothing written, when the document has neither.
    """
    panels: list[Callable[[Axes, dict[str, Any]], None]] = []
    if "throughput" in document:
        panels.append(_throughput_panel)
    if "soak" in document:
        panels += [_soak_panel, _leak_panel]
    if not panels:
        return False
    count = len(panels)
    # A Figure of its own, not pyplot: no display, no global figure state.
    figure = Figure(figsize=(6.5 * count, 5), layout="tight")
    axes = figure.subplots(1, count, squeeze=False)
    for axis, panel in zip(axes[0], panels, strict=False):
        panel(axis, document)
    box = document["machine"]
    figure.suptitle(f"{box['broker']}, {box['cpu']}, {box['cpus']} CPUs, {_measured_on(document)}")
    figure.savefig(path, dpi=100)
    return True


def _throughput_panel(axis: Axes, document: dict[str, Any]) -> None:
    rows = document["throughput"]
    medians = [row["tasks_per_second"] for row in rows]
    spread = [
        [row["tasks_per_second"] - row["slowest"] for row in rows],
        [row["fastest"] - row["tasks_per_second"] for row in rows],
    ]
    axis.barh([row["variant"] for row in rows], medians, xerr=spread, capsize=3)
    axis.invert_yaxis()
    axis.set_xlabel("tasks/s, first publish to last result (median round, slowest to fastest)")
    axis.set_title("Throughput, one worker, concurrency 2")


def _soak_panel(axis: Axes, document: dict[str, Any]) -> None:
    _memory(axis, {"process_data": document["soak"]["process_data"]})
    axis.set_title("Soak: process_data, no recycling")


def _leak_panel(axis: Axes, document: dict[str, Any]) -> None:
    _memory(axis, document["soak"]["leak"])
    axis.set_title("Leaking render_thumbnail (1 MB a call)")


def _memory(axis: Axes, runs: dict[str, Any]) -> None:
    for label, run in runs.items():
        samples = run["samples"]
        axis.plot([s["tasks"] for s in samples], [s["rss_mib"] for s in samples], ".-", label=label)
    axis.set_xlabel("tasks done")
    axis.set_ylabel("RSS of the worker and its pool, MiB")
    axis.set_ylim(bottom=0)
    axis.legend()
