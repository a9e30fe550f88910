"""How many pool processes a worker should run: a pure decision, no I/O.

``decide`` sees one snapshot (pool size, work waiting, CPU and memory) and answers a
size; ``autoscale.py`` takes the snapshots and applies the answer. Three rules keep
the pool from flapping:

- a cool-down: after a change, nothing changes again for ``cooldown`` seconds;
- hysteresis: growing needs CPU at or below ``cpu_grow_below`` and free memory for
  every new process, shrinking for load needs CPU above ``cpu_shrink_above`` or less
  than half a process's memory free; between the two bands the size holds;
- grow and shrink conditions exclude each other, so steady inputs move the size one
  way only, then hold.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScalingPolicy:
    """The bounds and thresholds of one worker's pool."""

    minimum: int
    maximum: int
    # Seconds after a change before the next one.
    cooldown: float
    # Fractions of all CPUs busy (0..1): grow only at or below the first, shrink above the second.
    cpu_grow_below: float
    cpu_shrink_above: float
    # Bytes one process may reach before the memory guard replaces it
    # (worker.max_memory_per_child): a new process is only started when that much is free.
    process_memory: int


@dataclass(frozen=True)
class Load:
    """One snapshot of a worker and its machine."""

    size: int  # pool processes now
    busy: int  # processes running a task
    backlog: int  # messages waiting: on the broker and prefetched by this worker
    cpu: float  # fraction of all CPUs busy, 0..1
    memory_available: int  # bytes the machine can still give
    since_change: float  # seconds since the pool last changed size


def decide(policy: ScalingPolicy, load: Load) -> int:
    """The pool size to run next, always within ``policy.minimum``..``policy.maximum``."""
    bounded = min(max(load.size, policy.minimum), policy.maximum)
    if bounded != load.size:
        return bounded  # bounds changed (celery control autoscale): obey them at once
    if load.since_change < policy.cooldown:
        return load.size
    if under_pressure(policy, load):
        return max(load.size - 1, policy.minimum)  # one at a time: the pressure may be elsewhere
    if load.backlog > 0:
        return _grown(policy, load)
    # Nothing waits: stop the idle processes, keep the busy ones.
    return max(min(load.size, load.busy), policy.minimum)


def under_pressure(policy: ScalingPolicy, load: Load) -> bool:
    """Whether the machine is too loaded to keep this many processes."""
    return load.cpu > policy.cpu_shrink_above or load.memory_available < policy.process_memory // 2


def _grown(policy: ScalingPolicy, load: Load) -> int:
    """Enough processes for the work in hand, as far as CPU and the memory guard allow."""
    if load.cpu > policy.cpu_grow_below:
        return load.size
    # Each new process may grow to the memory guard before it is replaced: start only
    # as many as the free memory holds at that size.
    fits = load.memory_available // policy.process_memory
    wanted = load.busy + load.backlog
    return max(load.size, min(wanted, policy.maximum, load.size + fits))
