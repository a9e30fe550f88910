"""Run the benchmarks; write their results as JSON, Markdown tables and a plot.

    uv run python -m benchmarks [--size tiny|full] [--only throughput,soak,...] [--output DIR]

Needs the test profile's broker and result store (127.0.0.1, as the integration tests
do) and empties the project's queues there: run it where no other worker or test uses
them. ``--size tiny`` runs every benchmark with a handful of tasks, to prove it works.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import {% if cookiecutter.include_api %}api_latency, {% endif %}layers, payload, report, soak, throughput
from .sizes import SIZES, Size

BENCHMARKS: dict[str, Callable[[Size, Callable[[str], None]], Any]] = {
    "throughput": lambda size, progress: throughput.run(
        size.tasks, size.rounds, size.variants, progress
    ),
    "layers": lambda size, progress: layers.run(size.layer_calls, progress),
    "payload": lambda size, progress: payload.run(size.payload_tasks, progress),
    "soak": lambda size, progress: soak.run(
        size.soak_tasks, size.soak_batch, size.leak_tasks, progress
    ),
{%- if cookiecutter.include_api %}
    "api": lambda size, progress: api_latency.run(size.api_requests, progress),
{%- endif %}
}


def progress(line: str) -> None:
    """Print a progress line at once, so a long run shows it is alive."""
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks and write their results."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--size",
        choices=sorted(SIZES),
        default="full",
        help="full (default): the counts docs/performance.md gives; tiny: a handful each",
    )
    parser.add_argument(
        "--only",
        type=lambda text: text.split(","),
        default=list(BENCHMARKS),
        help=f"comma-separated, from: {', '.join(BENCHMARKS)} (default: all)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("benchmarks/results"),
        help="folder for the JSON, Markdown and PNG (default: benchmarks/results)",
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.only) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    size = SIZES[args.size]
    results = {}
    for name in args.only:
        progress(f"== {name} ({args.size})")
        results[name] = BENCHMARKS[name](size, progress)
    written = report.write(results, args.size, args.output)
    for path in written:
        progress(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
