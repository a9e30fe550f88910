"""On Redis, a worker requeues the tasks a lost connection cut off once it reconnects."""

from __future__ import annotations

from collections import OrderedDict
from types import SimpleNamespace
from typing import Any, cast

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
    create_app,
)
from {{ cookiecutter.package_name }}.config import (
    Settings,
)
from {{ cookiecutter.package_name }}.config.settings import (
    BrokerSettings,
)
from {{ cookiecutter.package_name }}.reconnect import (
    RequeueAfterReconnect,
)


class FakeQoS:
    """What the step uses of kombu's Redis QoS: the unacked deliveries, and a requeue."""

    def __init__(self, *tags: str, fail: Exception | None = None) -> None:
        self._delivered: OrderedDict[str, object] = OrderedDict((tag, object()) for tag in tags)
        self.requeued: list[str] = []
        self.fail = fail

    def restore_by_tag(self, tag: str) -> None:
        if self.fail is not None:
            raise self.fail
        self.requeued.append(tag)


def channel(*tags: str, fail: Exception | None = None) -> Any:
    """A kombu channel as far as the step sees it."""
    return SimpleNamespace(qos=FakeQoS(*tags, fail=fail))


def consumer(open_channel: Any) -> Any:
    """A Celery consumer connected through ``open_channel``."""
    return SimpleNamespace(
        connection=SimpleNamespace(
            default_channel=open_channel, connection_errors=(RedisConnectionError,)
        )
    )


def step() -> RequeueAfterReconnect:
    """The step as a worker's consumer blueprint creates it."""
    return RequeueAfterReconnect(cast(Any, SimpleNamespace()))


def test_after_a_reconnect_the_lost_connections_unacked_tasks_are_requeued() -> None:
    requeue, first, second = step(), channel("a", "b"), channel()
    requeue.start(consumer(first))  # the first connection: nothing lost yet
    assert second.qos.requeued == []
    requeue.start(consumer(second))  # reconnected after `first` was lost
    assert second.qos.requeued == ["a", "b"]  # through the open channel
    assert first.qos._delivered == {}
    requeue.start(consumer(channel()))  # `second` lost with nothing unacked
    assert second.qos.requeued == ["a", "b"]


def test_if_redis_goes_away_again_the_next_connection_retries() -> None:
    requeue, lost = step(), channel("a")
    requeue.start(consumer(lost))
    with pytest.raises(RedisConnectionError):
        requeue.start(consumer(channel(fail=RedisConnectionError("gone again"))))
    retry = channel()
    requeue.start(consumer(retry))
    assert retry.qos.requeued == ["a"]


def test_any_other_error_is_logged_and_the_worker_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    requeue = step()
    requeue.start(consumer(channel("a")))
    requeue.start(consumer(channel(fail=KeyError("kombu changed"))))
    assert "could not requeue the tasks of the lost broker connection" in caplog.text


def test_the_step_needs_a_connection() -> None:
    with pytest.raises(RuntimeError, match="no broker connection"):
        step().start(cast(Any, SimpleNamespace(connection=None)))


def test_only_redis_workers_requeue_after_a_reconnect(
    local_settings: Settings, local_app: ProjectCelery
) -> None:
    redis = local_settings.model_copy(
        update={"broker": BrokerSettings(url="redis://cache:6379/0", visibility_timeout=400)}
    )
    assert RequeueAfterReconnect in create_app(redis).steps["consumer"]
    assert RequeueAfterReconnect not in local_app.steps["consumer"]
