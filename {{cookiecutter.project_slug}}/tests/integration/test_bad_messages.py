"""Poison messages, published straight to the broker as another producer might.

None may run code, each is logged, and the worker stays up for the next valid task.
"""

from __future__ import annotations

import pickle
import uuid
from pathlib import Path
from typing import Any

import pytest

from {{ cookiecutter.package_name }}.celery_app import (
    DEFAULT_QUEUE,
    ProjectCelery,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    ProcessDataOutput,
    process_data,
)

from .conftest import RunWorker
{%- if cookiecutter.broker == "rabbitmq" %}
from .harness import dead_lettered
{%- endif %}

pytestmark = pytest.mark.integration
TIMEOUT = 30


class CreateFile:
    """Unpickling this creates a file: evidence that pickled content was loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def publish_raw(
    app: ProjectCelery, body: bytes, content_type: str, headers: dict[str, Any]
) -> None:
    """Publish bytes to the default queue, bypassing Celery's serializer and checks."""
    queue = app.amqp.queues[DEFAULT_QUEUE]
    with app.producer_or_acquire() as producer:
        producer.publish(
            body,
            exchange=queue.exchange,
            routing_key=queue.routing_key,
            content_type=content_type,
            content_encoding="utf-8" if "json" in content_type else "binary",
            headers=headers,
            declare=[queue],
        )


def task_headers(name: str) -> dict[str, Any]:
    """The headers Celery's protocol needs to route a message to a task."""
    task_id = str(uuid.uuid4())
    return {"lang": "py", "task": name, "id": task_id, "root_id": task_id}


def test_poison_messages_are_refused_and_the_worker_carries_on(
    broker_app: ProjectCelery, run_worker: RunWorker, tmp_path: Path
) -> None:
    marker = tmp_path / "pickle-was-loaded"
    valid_args = b'[[{"value": 1, "label": "a"}], {}, {}]'
    bad_json = task_headers(process_data.name)
    unknown = task_headers("{{ cookiecutter.package_name }}.tasks.no_such_task")
    pickled = task_headers(process_data.name)
    with run_worker(concurrency=1) as worker:
        publish_raw(broker_app, b'[[{"value": 1,', "application/json", bad_json)
        publish_raw(broker_app, valid_args, "application/json", unknown)
        publish_raw(broker_app, valid_args, "application/json", headers={})
        body = pickle.dumps(((CreateFile(marker),), {}, {}))
        publish_raw(broker_app, body, "application/x-python-serialize", pickled)
        wrong_model = broker_app.send_task(process_data.name, args=[{"value": "x"}])

        # Delivered in order: once the valid task is done, the others were handled.
        result = process_data.delay(ProcessDataInput(value=2, label="after"))
        assert result.get(timeout=TIMEOUT) == ProcessDataOutput(message="Processed: 2 - after")
        assert worker.alive
        wrong_model.get(timeout=TIMEOUT, propagate=False)
        log = worker.output()

    assert not marker.exists(), "the pickled payload ran on the worker"
    assert "Refusing to deserialize untrusted content of type pickle" in log
    assert "Can't decode message body" in log
    assert "Received unregistered task of type" in log
    assert "Received and deleted unknown message" in log
    assert [broker_app.AsyncResult(h["id"]).state for h in (bad_json, pickled)] == ["PENDING"] * 2
    # The worker records why it refused these two, so their callers are not left waiting.
    refused = broker_app.AsyncResult(unknown["id"])
    assert (refused.state, type(refused.result).__name__) == ("FAILURE", "NotRegistered")
    assert wrong_model.state == "FAILURE"
    assert str(wrong_model.result) == (
        "invalid input for process_data: value: Input should be a valid integer; "
        "label: Field required"
    )
{%- if cookiecutter.broker == "rabbitmq" %}
    # Refused messages are kept for a person to inspect; Celery drops (acks) only the
    # undecodable one, after logging it.
    kept = dead_lettered(broker_app)
    assert sorted(kept, key=str) == sorted(
        [unknown["id"], pickled["id"], wrong_model.id, None], key=str
    )
{%- endif %}
