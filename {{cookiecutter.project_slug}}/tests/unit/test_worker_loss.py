"""A task that keeps killing its worker process is stopped after a few runs."""

from __future__ import annotations

from typing import Any

import pytest
from celery.app.trace import trace_task
from celery.result import AsyncResult
from redis import RedisError

from {{ cookiecutter.package_name }} import (
    worker_loss,
)
from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
)
from {{ cookiecutter.package_name }}.config.settings import (
    TaskSettings,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    process_data,
)
from {{ cookiecutter.package_name }}.worker_loss import (
    KEY_PREFIX,
    WorkerLostTooOftenError,
)

PAYLOAD = {"value": 1, "label": "x"}


class FakeRedis:
    """The few Redis calls worker_loss makes, on a dict; ``down`` makes them fail."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.calls: list[tuple[str, ...]] = []
        self.down = False
        self._queued: list[tuple[str, ...]] = []

    def pipeline(self) -> FakeRedis:
        return self

    def incr(self, key: str) -> None:
        self._queued.append(("incr", key))

    def expire(self, key: str, seconds: int) -> None:
        self._queued.append(("expire", key, str(seconds)))

    def execute(self) -> list[Any]:
        queued, self._queued = self._queued, []
        if self.down:
            raise RedisError("connection refused")
        self.calls += queued
        replies: list[Any] = []
        for call in queued:
            if call[0] == "incr":
                self.values[call[1]] = self.values.get(call[1], 0) + 1
                replies.append(self.values[call[1]])
            else:
                replies.append(True)
        return replies

    def delete(self, key: str) -> int:
        if self.down:
            raise RedisError("connection refused")
        self.calls.append(("delete", key))
        return int(self.values.pop(key, None) is not None)


@pytest.fixture
def fake_redis(monkeypatch: pytest.MonkeyPatch) -> FakeRedis:
    """Stand in for the result store's Redis client."""
    fake = FakeRedis()
    monkeypatch.setattr(worker_loss, "redis_client", lambda backend: fake)
    return fake


def run_in_worker(app: ProjectCelery, task_id: str, redelivered: bool = True) -> AsyncResult[Any]:
    """Run process_data as a worker's pool process does, and return its result."""
    task = app.tasks[process_data.name]
    request = {"id": task_id, "delivery_info": {"redelivered": redelivered}}
    trace_task(task, task_id, (PAYLOAD,), {}, request=request, app=app)
    return AsyncResult(task_id, app=app)


def test_a_first_delivery_costs_no_round_trip(
    local_app: ProjectCelery, fake_redis: FakeRedis
) -> None:
    assert run_in_worker(local_app, "first", redelivered=False).state == "SUCCESS"
    assert fake_redis.calls == []


def test_each_redelivery_is_counted_then_forgotten_when_its_run_ends(
    local_app: ProjectCelery, fake_redis: FakeRedis
) -> None:
    result = run_in_worker(local_app, "ends")
    assert result.state == "SUCCESS"
    key = KEY_PREFIX + "ends"
    expires = str(int(local_app.settings.results.expires))
    assert fake_redis.calls == [("incr", key), ("expire", key, expires), ("delete", key)]


def test_after_max_worker_losses_runs_died_the_next_delivery_fails_unrun(
    local_app: ProjectCelery, fake_redis: FakeRedis
) -> None:
    limit = local_app.settings.tasks.max_worker_losses
    # limit - 1 redeliveries before this one, each after a run that died: this one
    # follows the limit-th run that died.
    fake_redis.values[KEY_PREFIX + "killer"] = limit - 1
    result = run_in_worker(local_app, "killer")
    assert result.state == "FAILURE"
    assert isinstance(result.result, WorkerLostTooOftenError)
    assert f"tasks.max_worker_losses={limit}" in str(result.result)
    assert "killer" in str(result.result)
    # Forgotten: a message replayed from the dead-letter queue gets its runs again.
    assert KEY_PREFIX + "killer" not in fake_redis.values


def test_fewer_lost_runs_than_the_limit_run_again(
    local_app: ProjectCelery, fake_redis: FakeRedis
) -> None:
    fake_redis.values[KEY_PREFIX + "unlucky"] = local_app.settings.tasks.max_worker_losses - 2
    assert run_in_worker(local_app, "unlucky").state == "SUCCESS"


def test_the_task_runs_when_its_runs_cannot_be_counted(
    local_app: ProjectCelery, fake_redis: FakeRedis, caplog: pytest.LogCaptureFixture
) -> None:
    fake_redis.down = True
    assert run_in_worker(local_app, "uncounted").state == "SUCCESS"
    assert "could not count the runs" in caplog.text


def test_without_redis_results_nothing_is_counted(local_app: ProjectCelery) -> None:
    # The local profile keeps results in files: there is nowhere to count, so tasks run.
    assert worker_loss.redis_client(local_app.backend) is None
    assert run_in_worker(local_app, "local").state == "SUCCESS"


def test_direct_and_eager_calls_are_not_counted(
    local_app: ProjectCelery, fake_redis: FakeRedis
) -> None:
    process_data.apply(args=(PAYLOAD,))
    assert fake_redis.calls == []


def test_the_limit_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="max_worker_losses"):
        TaskSettings(max_worker_losses=0)
