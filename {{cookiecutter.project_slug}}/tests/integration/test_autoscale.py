"""The autoscaler on the real broker: queue depths as it reads them, and a pool that
grows with a backlog and shrinks when it drains."""

from __future__ import annotations

from typing import Any

import pytest
from kombu import Exchange, Queue

from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
)
from {{ cookiecutter.package_name }}.queue_depth import (
    queue_depth,
    redis_lists,
)

from .conftest import RunWorker
from .harness import (
    WorkerProcess,
    eventually,
    final_states,
    send,
    unique,
)

pytestmark = pytest.mark.integration
# Short looks and cool-down so the test takes seconds; CPU thresholds out of the way,
# as other work on the machine must not decide this test; a small memory guard so
# free memory never does either.
AUTOSCALE = {
    "autoscale.enabled": "true",
    "autoscale.min_processes": "1",
    "autoscale.max_processes": "3",
    "autoscale.interval": "0.3",
    "autoscale.cooldown": "1.5",
    "autoscale.cpu_grow_below": "1",
    "autoscale.cpu_shrink_above": "1",
    "worker.max_memory_per_child": "102400",
    "log.level": "INFO",  # the autoscaler's lines, for a failure's message
}


def pool_size(app: ProjectCelery, worker: WorkerProcess) -> int:
    """The worker's pool processes, as its autoscaler reports them to ``inspect stats``."""
    stats = app.control.inspect(destination=[worker.node], timeout=1).stats() or {}
    node: dict[str, Any] = dict(stats.get(worker.node, {}))  # the stubs omit "autoscaler"
    return int(node["autoscaler"]["current"]) if node else -1


def test_queue_depth_counts_every_waiting_message(broker_app: ProjectCelery) -> None:
    """On Redis a priority message waits in a list of its own; it is counted too."""
    name = unique("depth")
    queue = Queue(name, Exchange(name), routing_key=name)
    with broker_app.connection_for_write() as connection:
        declared = queue(connection.default_channel)
        declared.declare()
        try:
            producer = connection.Producer()
            for priority in (0, 9):
                producer.publish(
                    {"n": priority}, exchange=queue.exchange, routing_key=name, priority=priority
                )
            assert queue_depth(connection, name) == 2
            assert queue_depth(connection, unique("missing")) == 0
            if broker_app.settings.broker.is_redis:
                client = connection.default_channel.client  # type: ignore[attr-defined]
                lengths = [client.llen(key) for key in redis_lists(name)]
                assert lengths == [1, 0, 0, 1]  # the plain list and priority 9's
        finally:
            declared.delete()


def test_a_backlog_grows_the_pool_and_draining_shrinks_it(
    broker_app: ProjectCelery, run_worker: RunWorker
) -> None:
    with run_worker(concurrency=1, settings=AUTOSCALE) as worker:
        # A message left unacknowledged by an earlier run may come back first: let it pass.
        eventually(
            lambda: pool_size(broker_app, worker) == 1,
            timeout=10,
            message=f"the pool did not start at its minimum:\n{worker.output()}",
        )
        results = [
            send(broker_app, "work_then_apply", {"key": unique("scale"), "seconds": 1})
            for _ in range(12)
        ]
        eventually(
            lambda: pool_size(broker_app, worker) == 3,
            timeout=10,
            message=f"the pool did not grow to 3:\n{worker.output()}",
        )
        states = final_states(broker_app, [result.id for result in results], timeout=20)
        assert set(states.values()) == {"SUCCESS"}
        eventually(
            lambda: pool_size(broker_app, worker) == 1,
            timeout=10,
            message=f"the pool did not shrink back to 1:\n{worker.output()}",
        )
        # Still healthy: alive, serving, nothing logged against the autoscaler.
        after = send(broker_app, "work_then_apply", {"key": unique("after"), "seconds": 0})
        assert final_states(broker_app, [after.id], timeout=10) == {after.id: "SUCCESS"}
        assert worker.alive
        assert "autoscale: 1 -> " in worker.output()
        assert "Traceback" not in worker.output()
