"""Delayed publishes Redis would deliver twice are refused in the caller."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from celery import Celery, chain, chord, group

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
from {{ cookiecutter.package_name }}.scheduling import (
    DelayTooLongError,
)
from {{ cookiecutter.package_name }}.tasks.notifications import (
    Notification,
    send_notification,
)

TIMEOUT = 400
README = Path(__file__).resolve().parents[2] / "README.md"
NOTE = Notification(recipient="ops@example.com", body="hello")


def app_on(local_settings: Settings, url: str) -> ProjectCelery:
    """An app whose broker is ``url``, with a visibility timeout of ``TIMEOUT``."""
    broker = BrokerSettings(url=url, visibility_timeout=TIMEOUT)
    return create_app(local_settings.model_copy(update={"broker": broker}))


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Publishes that got past the check to Celery; none reaches a broker."""
    published: list[dict[str, Any]] = []

    def record(_app: Celery, name: str, *args: Any, **options: Any) -> None:
        published.append({"name": name, "args": args, **options})

    monkeypatch.setattr(Celery, "send_task", record)
    return published


@pytest.fixture
def redis_app(local_settings: Settings) -> ProjectCelery:
    """An app on a Redis broker (never reached: ``sent`` stands in for it)."""
    return app_on(local_settings, "redis://127.0.0.1:6379/0")


def longest_delay(app: ProjectCelery) -> float:
    """The longest delay send_notification may have: timeout minus its hard limit."""
    limit = app.tasks[send_notification.name].time_limit
    assert limit is not None
    return TIMEOUT - limit


def test_the_refusal_names_the_numbers_and_the_ways_out(
    redis_app: ProjectCelery, sent: list[dict[str, Any]]
) -> None:
    limit = TIMEOUT - longest_delay(redis_app)
    with pytest.raises(DelayTooLongError) as refused:
        send_notification.apply_async((NOTE,), countdown=3600)
    message = str(refused.value)
    assert message.startswith("send_notification: a delay of 3600s is too long on Redis")
    for part in (
        f"time_limit {limit:g}s",
        f"broker.visibility_timeout ({TIMEOUT}s)",
        "run twice",
        f"keep the delay under {TIMEOUT - limit:g}s",
        "raise broker.visibility_timeout",
        "periodic schedule with beat",
    ):
        assert part in message
    assert "\n" not in message
    assert sent == []


def test_the_readme_shows_the_refusal_with_the_default_settings(
    local_settings: Settings, sent: list[dict[str, Any]]
) -> None:
    create_app(local_settings.model_copy(update={"broker": BrokerSettings(url="redis://x:6379")}))
    with pytest.raises(DelayTooLongError) as refused:
        send_notification.apply_async((NOTE,), countdown=3600)
    assert f"DelayTooLongError: {refused.value}\n" in README.read_text()


def test_a_delay_just_under_the_limit_is_published(
    redis_app: ProjectCelery, sent: list[dict[str, Any]]
) -> None:
    delay = longest_delay(redis_app) - 0.5
    send_notification.apply_async((NOTE,), countdown=delay)
    assert [(item["name"], item["countdown"]) for item in sent] == [(send_notification.name, delay)]
    with pytest.raises(DelayTooLongError):
        send_notification.apply_async((NOTE,), countdown=longest_delay(redis_app))
    assert len(sent) == 1


@pytest.mark.parametrize(
    "publish",
    [
        pytest.param(lambda: send_notification.delay(NOTE), id="no delay"),
        pytest.param(
            lambda: send_notification.apply_async((NOTE,), countdown=10), id="short countdown"
        ),
    ],
)
def test_short_or_no_delays_pass(
    redis_app: ProjectCelery, sent: list[dict[str, Any]], publish: Any
) -> None:
    publish()
    assert len(sent) == 1


def in_seconds(seconds: float) -> datetime:
    """An aware UTC time ``seconds`` from now."""
    return datetime.now(UTC) + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "publish",
    [
        pytest.param(
            lambda app: send_notification.apply_async((NOTE,), eta=in_seconds(500)), id="eta"
        ),
        pytest.param(
            # Celery accepts an ISO string too; the stubs say datetime only.
            lambda app: send_notification.apply_async(
                (NOTE,), eta=cast(Any, in_seconds(500).replace(tzinfo=None).isoformat())
            ),
            id="naive ISO eta",
        ),
        pytest.param(
            lambda app: send_notification.apply_async((NOTE,), countdown=350, time_limit=60),
            id="the call's own time limit counts",
        ),
        pytest.param(
            lambda app: app.send_task(send_notification.name, [NOTE.model_dump()], None, 500),
            id="send_task, countdown by position",
        ),
        pytest.param(lambda app: app.send_task("elsewhere.task", countdown=500), id="unknown task"),
        pytest.param(
            lambda app: send_notification.s(NOTE).set(countdown=500).delay(), id="signature"
        ),
        pytest.param(
            lambda app: chain(
                send_notification.s(NOTE), send_notification.s(NOTE).set(countdown=500)
            ).delay(),
            id="a later step of a chain",
        ),
        pytest.param(
            lambda app: chord(
                [send_notification.s(NOTE)], send_notification.s().set(countdown=500)
            ).delay(),
            id="a chord's body",
        ),
        pytest.param(
            lambda app: send_notification.apply_async(
                (NOTE,), link=send_notification.s().set(countdown=500)
            ),
            id="a callback",
        ),
        pytest.param(
            lambda app: group(send_notification.s(NOTE).set(countdown=500)).delay(),
            id="a member of a group",
        ),
    ],
)
def test_every_publish_path_is_checked_before_anything_is_sent(
    redis_app: ProjectCelery, sent: list[dict[str, Any]], publish: Any
) -> None:
    with pytest.raises(DelayTooLongError, match="too long on Redis"):
        publish(redis_app)
    assert sent == []


@pytest.mark.parametrize(
    "url", ["amqp://127.0.0.1:5672//", "filesystem://localhost/"], ids=["rabbitmq", "local"]
)
def test_brokers_without_a_visibility_timeout_take_any_delay(
    local_settings: Settings, sent: list[dict[str, Any]], url: str
) -> None:
    app_on(local_settings, url)
    send_notification.apply_async((NOTE,), countdown=30 * 86400)
    send_notification.apply_async((NOTE,), eta=in_seconds(30 * 86400))
    assert len(sent) == 2


def test_the_embedded_broker_queues_a_month_long_delay(local_app: ProjectCelery) -> None:
    folder = local_app.settings.data_dir / "broker"
    send_notification.apply_async((NOTE,), countdown=30 * 86400)
    assert len(list(folder.iterdir())) == 1
