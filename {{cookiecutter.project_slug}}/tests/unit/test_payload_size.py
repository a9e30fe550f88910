"""Task arguments over tasks.max_payload_bytes are refused in the caller, nothing sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from celery import Celery, chain
from kombu.exceptions import EncodeError
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
    create_app,
)
from {{ cookiecutter.package_name }}.config import (
    Settings,
)
from {{ cookiecutter.package_name }}.config.settings import (
    BrokerSettings,
    TaskSettings,
)
from {{ cookiecutter.package_name }}.payload_size import (
    PayloadTooLargeError,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    process_data,
)

SMALL = ProcessDataInput(value=1, label="a")
BIG = ProcessDataInput(value=1, label="x" * 200)


def size_of(payload: ProcessDataInput) -> int:
    """Bytes of ``process_data.delay(payload)``'s arguments as JSON: ``[args, kwargs]``."""
    return len(json.dumps([[payload.model_dump(mode="json")], {}]))


def refusal(size: int, limit: int) -> str:
    """The error process_data gets for arguments of ``size`` bytes over ``limit``."""
    return (
        f"process_data: arguments are {size:,} bytes as JSON, over tasks.max_payload_bytes "
        f"({limit:,}); pass a reference (a URL, an id) instead of the data, or raise the setting"
    )


def with_limit(settings: Settings, limit: int, broker: BrokerSettings | None = None) -> Settings:
    """``settings`` with ``tasks.max_payload_bytes`` set to ``limit`` (and another broker)."""
    tasks = settings.tasks.model_copy(update={"max_payload_bytes": limit})
    return settings.model_copy(update={"tasks": tasks, "broker": broker or settings.broker})


def queued(app: ProjectCelery) -> list[Path]:
    """Messages waiting in the embedded broker."""
    return sorted((app.settings.data_dir / "broker").glob("*.msg"))


@pytest.fixture
def small_limit_app(local_settings: Settings) -> ProjectCelery:
    """An app on the embedded broker whose limit is exactly BIG's size minus one byte."""
    return create_app(with_limit(local_settings, size_of(BIG) - 1))


def test_arguments_at_the_limit_are_published(local_settings: Settings) -> None:
    app = create_app(with_limit(local_settings, size_of(BIG)))
    process_data.delay(BIG)
    assert len(queued(app)) == 1


def test_arguments_over_the_limit_are_refused_and_nothing_is_queued(
    small_limit_app: ProjectCelery,
) -> None:
    limit = small_limit_app.settings.tasks.max_payload_bytes
    with pytest.raises(PayloadTooLargeError) as refused:
        process_data.delay(BIG)
    assert str(refused.value) == refusal(limit + 1, limit)
    assert isinstance(refused.value, ValueError)
    assert queued(small_limit_app) == []
    process_data.delay(SMALL)  # the limit is about size: a small call still goes
    assert len(queued(small_limit_app)) == 1


def test_the_default_limit_refuses_a_blob(local_app: ProjectCelery) -> None:
    blob = ProcessDataInput(value=1, label="x" * 300_000)
    with pytest.raises(PayloadTooLargeError) as refused:
        process_data.delay(blob)
    assert str(refused.value) == refusal(size_of(blob), 262_144)
    assert queued(local_app) == []


@pytest.mark.parametrize(
    "publish",
    [
        pytest.param(lambda app: process_data.apply_async((BIG,)), id="apply_async"),
        pytest.param(lambda app: process_data.s(BIG).delay(), id="signature"),
        pytest.param(
            lambda app: app.send_task(process_data.name, [BIG.model_dump()], None),
            id="send_task, args by position",
        ),
        pytest.param(
            lambda app: app.send_task(process_data.name, kwargs={"payload": BIG.model_dump()}),
            id="send_task, kwargs",
        ),
    ],
)
def test_every_publish_path_is_checked(small_limit_app: ProjectCelery, publish: Any) -> None:
    with pytest.raises(PayloadTooLargeError, match=r"over tasks\.max_payload_bytes"):
        publish(small_limit_app)
    assert queued(small_limit_app) == []


def test_steps_a_message_carries_count_towards_its_size(small_limit_app: ProjectCelery) -> None:
    # The chain's later step travels inside the first message, so it is sent now.
    with pytest.raises(PayloadTooLargeError) as refused:
        chain(process_data.si(SMALL), process_data.si(BIG)).delay()
    assert str(refused.value).startswith(
        "process_data: arguments and the canvas steps it carries are "
    )
    assert queued(small_limit_app) == []


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the publishes that got past the checks to Celery; none reaches a broker."""
    published: list[str] = []

    def record(_app: Celery, name: str, *_args: Any, **_options: Any) -> None:
        published.append(name)

    monkeypatch.setattr(Celery, "send_task", record)
    return published


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "amqp://127.0.0.1:5672//"], ids=["redis", "rabbitmq"]
)
def test_every_broker_is_protected(local_settings: Settings, sent: list[str], url: str) -> None:
    create_app(with_limit(local_settings, size_of(BIG) - 1, BrokerSettings(url=url)))
    with pytest.raises(PayloadTooLargeError):
        process_data.delay(BIG)
    assert sent == []
    process_data.delay(SMALL)
    assert sent == [process_data.name]


def test_arguments_that_are_not_json_are_left_to_celery(
    small_limit_app: ProjectCelery,
) -> None:
    # Celery's own error, which callers may already catch, not a size it cannot measure.
    with pytest.raises(EncodeError):
        small_limit_app.send_task(process_data.name, [object()])
    assert queued(small_limit_app) == []


def test_the_limit_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="max_payload_bytes"):
        TaskSettings(max_payload_bytes=0)
