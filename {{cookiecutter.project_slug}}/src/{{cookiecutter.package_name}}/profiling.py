"""Run a task many times in this process and measure what each call costs.

``measure_memory`` answers the question of a leak: how much more memory is held after
the runs than before, per call, and which lines allocated what is still held. It uses
memray where it is installed (a development dependency on Linux: it sees allocations
made in C too) and the standard library's tracemalloc elsewhere, e.g. in the image.
``profile_cpu`` uses cProfile: it is in the standard library, so it runs in the image
as well, and it counts every call of every function, where a sampling profiler such
as pyinstrument would need a dependency and long runs to see a short task at all.
"""

from __future__ import annotations

import cProfile
import gc
import io
import pstats
import tempfile
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Site:
    """A line whose allocations were still held after the runs."""

    where: str  # file:line
    size: int  # bytes
    blocks: int


@dataclass(frozen=True)
class MemoryReport:
    """Memory held after ``runs`` calls that was not held before them."""

    tool: str
    runs: int
    growth: int  # bytes
    sites: list[Site]

    @property
    def per_call(self) -> float:
        """Bytes more held after each call."""
        return self.growth / self.runs


def measure_memory(call: Callable[[], object], runs: int, top: int) -> MemoryReport:
    """Call ``call`` once to warm up, then ``runs`` times, measuring what stays allocated.

    The warm-up call pays for imports, caches and connections made once, so they do
    not count as growth; garbage is collected before and after, so only memory still
    referenced counts.
    """
    call()
    try:
        import memray  # optional: a development dependency, on Linux only
    except ImportError:
        return _with_tracemalloc(call, runs, top)
    # memray reports what was allocated while it tracked and is still held at the end.
    # That includes the objects of the last call, freed only by the next one: tracking
    # one call, then runs + 1, and subtracting leaves what the runs added.
    with tempfile.TemporaryDirectory() as folder:
        once = _held_with_memray(memray, Path(folder) / "once.bin", call, 1)
        many = _held_with_memray(memray, Path(folder) / "many.bin", call, runs + 1)
    sites = [
        Site(where, size - once.get(where, (0, 0))[0], blocks - once.get(where, (0, 0))[1])
        for where, (size, blocks) in many.items()
    ]
    return _report("memray", runs, sites, top)


def _held_with_memray(
    memray: Any, capture: Path, call: Callable[[], object], calls: int
) -> dict[str, tuple[int, int]]:
    """Bytes and blocks allocated during ``calls`` calls and still held after, by line."""
    gc.collect()
    # Python's own allocator too, so small objects are seen one by one.
    with memray.Tracker(capture, trace_python_allocators=True):
        _repeat(call, calls)
        gc.collect()
    held: dict[str, tuple[int, int]] = {}
    with memray.FileReader(capture) as reader:
        for record in reader.get_leaked_allocation_records(merge_threads=True):
            # The innermost Python line, as tracemalloc reports it.
            stack = record.stack_trace(max_stacks=1)
            where = f"{_short(stack[0][1])}:{stack[0][2]}" if stack else "(no Python frame)"
            size, blocks = held.get(where, (0, 0))
            held[where] = (size + record.size, blocks + record.n_allocations)
    return held


def _with_tracemalloc(call: Callable[[], object], runs: int, top: int) -> MemoryReport:
    """measure_memory with the standard library, line by line.

    Both snapshots follow a call, so the objects a call leaves until the next one
    count once in each and cancel out.
    """
    tracemalloc.start()
    try:
        call()
        gc.collect()
        before = tracemalloc.take_snapshot()
        _repeat(call, runs)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    # Filtered once both are taken: filtering allocates too (fnmatch's compiled patterns).
    ignored = [tracemalloc.Filter(inclusive=False, filename_pattern=tracemalloc.__file__)]
    before, after = before.filter_traces(ignored), after.filter_traces(ignored)
    sites = [
        Site(f"{_short(frame.filename)}:{frame.lineno}", stat.size_diff, stat.count_diff)
        for stat in after.compare_to(before, "lineno")
        for frame in stat.traceback[:1]
    ]
    return _report("tracemalloc", runs, sites, top)


def _report(tool: str, runs: int, sites: list[Site], top: int) -> MemoryReport:
    """The total growth, and the ``top`` lines holding most of it."""
    growth = sum(site.size for site in sites)
    largest = sorted(sites, key=lambda site: site.size, reverse=True)[:top]
    return MemoryReport(tool, runs, growth, [site for site in largest if site.size > 0])


def profile_cpu(call: Callable[[], object], runs: int, top: int) -> str:
    """cProfile's table of the ``top`` functions by time spent in their own code."""
    call()  # warm-up, as for memory: imports are not the task's cost
    profiler = cProfile.Profile()
    profiler.runcall(_repeat, call, runs)
    table = io.StringIO()
    pstats.Stats(profiler, stream=table).strip_dirs().sort_stats("tottime").print_stats(top)
    return table.getvalue().strip("\n")


def _repeat(call: Callable[[], object], runs: int) -> None:
    for _ in range(runs):
        call()


def _short(filename: str) -> str:
    """A file name relative to the working directory, or to site-packages, when under it."""
    path = Path(filename)
    if path.is_relative_to(Path.cwd()):
        return str(path.relative_to(Path.cwd()))
    return filename.rpartition("site-packages/")[2]


def size_text(size: float) -> str:
    """Bytes in B, KiB or MiB."""
    for unit in ("B", "KiB"):
        if abs(size) < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} MiB"
