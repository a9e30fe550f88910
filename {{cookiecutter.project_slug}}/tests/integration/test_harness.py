"""The harness itself: a test starts from empty queues whatever ran before it."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.celery_app import (
    CPU_QUEUE,
    DEFAULT_QUEUE,
    ProjectCelery,
)

from .conftest import declare_queues, delete_queues
from .harness import queued

pytestmark = pytest.mark.integration


def test_delete_queues_drops_messages_another_connection_published(
    broker_app: ProjectCelery,
) -> None:
    declare_queues(broker_app)
    for queue in (DEFAULT_QUEUE, CPU_QUEUE):
        # By name, unrun: no worker consumes during this test.
        broker_app.send_task("left.over.by.an.earlier.test", queue=queue)
    assert [queued(broker_app, queue) for queue in (DEFAULT_QUEUE, CPU_QUEUE)] == [1, 1]
    delete_queues(broker_app)
    declare_queues(broker_app)
    assert [queued(broker_app, queue) for queue in (DEFAULT_QUEUE, CPU_QUEUE)] == [0, 0]
