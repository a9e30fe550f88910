"""How many tasks each benchmark runs: ``full`` for numbers, ``tiny`` to prove it works."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Size:
    """Counts for one run of the suite."""

    tasks: int  # per throughput round
    rounds: int
    variants: tuple[str, ...] | None  # the throughput rows to run; None: every one
    layer_calls: int  # per timing of a layer
    payload_tasks: int  # per payload size
    soak_tasks: int
    soak_batch: int  # RSS is sampled after each batch
    leak_tasks: int
    api_requests: int


SIZES = {
    "full": Size(
        tasks=2000,
        rounds=5,
        variants=None,
        layer_calls=10_000,
        payload_tasks=500,
        soak_tasks=20_000,
        soak_batch=1000,
        leak_tasks=400,
        api_requests=2000,
    ),
    # Each benchmark with a handful of tasks; throughput with one row of each kind, as
    # every row starts a worker of its own.
    "tiny": Size(
        tasks=20,
        rounds=1,
        variants=(
            "bare Celery, defaults",
            "bare + all the project's settings",
            "project, typed task",
            "project, plain task",
        ),
        layer_calls=20,
        payload_tasks=5,
        soak_tasks=40,
        soak_batch=20,
        leak_tasks=10,
        api_requests=20,
    ),
}
