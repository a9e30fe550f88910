"""Properties of the autoscaler's decision, over generated pools, queues and machines."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from {{ cookiecutter.package_name }}.scaling import (
    Load,
    ScalingPolicy,
    decide,
    under_pressure,
)

MIB = 1024 * 1024


@st.composite
def policies(draw: st.DrawFn) -> ScalingPolicy:
    """Any valid policy: min <= max, grow threshold <= shrink threshold."""
    minimum = draw(st.integers(1, 16))
    grow, shrink = sorted(draw(st.lists(st.floats(0, 1), min_size=2, max_size=2)))
    return ScalingPolicy(
        minimum=minimum,
        maximum=draw(st.integers(minimum, 32)),
        cooldown=draw(st.floats(0.1, 120)),
        cpu_grow_below=grow,
        cpu_shrink_above=shrink,
        process_memory=draw(st.integers(1, 2048)) * MIB,
    )


@st.composite
def loads(draw: st.DrawFn) -> Load:
    """Any snapshot, the pool size possibly outside the policy's bounds."""
    size = draw(st.integers(0, 40))
    return Load(
        size=size,
        busy=draw(st.integers(0, size)),
        backlog=draw(st.integers(0, 10_000)),
        cpu=draw(st.floats(0, 1)),
        memory_available=draw(st.integers(0, 64 * 1024)) * MIB,
        since_change=draw(st.floats(0, 600)),
    )


def cooled(policy: ScalingPolicy, load: Load) -> Load:
    """The snapshot once the cool-down has passed."""
    return replace(load, since_change=policy.cooldown)


@given(policies(), loads())
def test_never_above_max_or_below_min(policy: ScalingPolicy, load: Load) -> None:
    assert policy.minimum <= decide(policy, load) <= policy.maximum


@given(policies(), loads())
def test_nothing_changes_during_the_cooldown(policy: ScalingPolicy, load: Load) -> None:
    load = replace(load, size=min(max(load.size, policy.minimum), policy.maximum))
    load = replace(load, busy=min(load.busy, load.size), since_change=policy.cooldown / 2)
    assert decide(policy, load) == load.size


@given(policies(), loads(), st.integers(0, 60), st.integers(2, 20))
def test_a_steady_queue_moves_the_size_one_way_then_holds(
    policy: ScalingPolicy, load: Load, demand: int, rounds: int
) -> None:
    """Constant demand, CPU and memory: the size never turns back (no flapping)."""
    size = min(max(load.size, policy.minimum), policy.maximum)
    sizes = [size]
    for _ in range(rounds):
        # Every process takes one task; what does not fit waits.
        step = replace(
            cooled(policy, load),
            size=size,
            busy=min(size, demand),
            backlog=max(demand - size, 0),
        )
        size = decide(policy, step)
        sizes.append(size)
    steps = [after - before for before, after in pairwise(sizes)]
    assert all(step >= 0 for step in steps) or all(step <= 0 for step in steps)


@given(policies(), loads())
def test_a_constant_snapshot_is_a_fixed_point_after_one_move(
    policy: ScalingPolicy, load: Load
) -> None:
    """Even with the backlog frozen, a decision is never undone by the next one."""
    first = decide(policy, cooled(policy, load))
    second = decide(policy, replace(cooled(policy, load), size=first, busy=min(load.busy, first)))
    assert (first - load.size) * (second - first) >= 0


@given(policies(), loads())
def test_high_load_shrinks_even_with_a_backlog(policy: ScalingPolicy, load: Load) -> None:
    load = replace(cooled(policy, load), backlog=max(load.backlog, 1))
    load = replace(load, size=min(max(load.size, policy.minimum + 1), policy.maximum))
    busy_cpu = replace(load, cpu=1.0) if policy.cpu_shrink_above < 1 else None
    short_of_memory = replace(load, memory_available=policy.process_memory // 2 - 1)
    for loaded in filter(None, [busy_cpu, short_of_memory]):
        if loaded.size > policy.minimum:
            assert decide(policy, loaded) < loaded.size


@given(policies(), loads())
def test_a_backlog_grows_the_pool_when_there_is_headroom(policy: ScalingPolicy, load: Load) -> None:
    load = replace(
        cooled(policy, load),
        size=min(max(load.size, policy.minimum), policy.maximum),
        backlog=max(load.backlog, 1),
        cpu=min(load.cpu, policy.cpu_grow_below),
        memory_available=max(load.memory_available, policy.process_memory),
    )
    load = replace(load, busy=load.size)  # every process is working and more waits
    if load.size < policy.maximum:
        assert decide(policy, load) > load.size


@given(policies(), loads(), st.floats(0, 4))
def test_growth_never_outruns_the_memory_guard(
    policy: ScalingPolicy, load: Load, guards_free: float
) -> None:
    """Each new process may reach worker.max_memory_per_child: that much must be free."""
    load = cooled(policy, load)
    size = min(max(load.size, policy.minimum), policy.maximum)
    free = int(guards_free * policy.process_memory)  # around the thresholds, not GiBs away
    load = replace(load, size=size, busy=min(load.busy, size), memory_available=free)
    new = decide(policy, load)
    if new > load.size:
        assert (new - load.size) * policy.process_memory <= load.memory_available
        assert not under_pressure(policy, load)


@given(policies(), loads())
def test_an_idle_pool_shrinks_to_its_busy_processes(policy: ScalingPolicy, load: Load) -> None:
    load = cooled(policy, load)
    size = min(max(load.size, policy.minimum), policy.maximum)
    load = replace(load, size=size, busy=min(load.busy, size), backlog=0)
    if not under_pressure(policy, load):
        assert decide(policy, load) == max(load.busy, policy.minimum)


@given(policies(), loads())
def test_busy_cpu_never_grows_the_pool(policy: ScalingPolicy, load: Load) -> None:
    size = min(max(load.size, policy.minimum), policy.maximum)
    load = replace(cooled(policy, load), size=size, busy=min(load.busy, size))
    if load.cpu > policy.cpu_grow_below:
        assert decide(policy, load) <= load.size
