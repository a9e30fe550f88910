"""Fixtures shared by every test: isolated settings and an app with fake clients."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from celery import Celery
from celery.signals import import_modules
from hypothesis import settings as hypothesis_settings

from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
    create_app,
)
from {{ cookiecutter.package_name }}.config import (
    Settings,
    load_settings,
)
from {{ cookiecutter.package_name }}.config.settings import (
    ENV_PREFIX,
)
from {{ cookiecutter.package_name }}.resources import (
    DirectoryLedger,
    ResourceProvider,
    Resources,
)
from {{ cookiecutter.package_name }}.tasks.typed import (
    TaskModel,
    TypedTask,
)

# Property tests search briefly by default, so the unit run takes seconds; CI searches
# ten times harder with HYPOTHESIS_PROFILE=thorough. No deadline: on a busy machine a
# slow example is noise, and speed is not what these properties state.
hypothesis_settings.register_profile("dev", max_examples=30, deadline=None)
hypothesis_settings.register_profile("thorough", max_examples=300, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


class RecordingGateway:
    """Fake partner gateway: fails the first ``failures`` calls with ``error``."""

    def __init__(self, failures: int = 0, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error
        self.delivered: list[tuple[str, str]] = []
        self.calls = 0

    def deliver(self, recipient: str, body: str) -> None:
        """Record the delivery, or fail while failures remain."""
        self.calls += 1
        if self.calls <= self.failures and self.error is not None:
            raise self.error
        self.delivered.append((recipient, body))


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer shell variable or .env file leaks into a test."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX) or name == "APP_ENV":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """The CLI configures the root logger; put it back after each test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


RegisterTasks = Callable[[Callable[[Celery], object]], None]


@pytest.fixture
def at_start_up() -> Iterator[RegisterTasks]:
    """Run ``register(app)`` in every create_app of this test, where task modules load.

    Tasks added this way exist before create_app checks them, and only in this test:
    ``shared_task`` would add them to every later app too.
    """
    receivers: list[Callable[..., None]] = []

    def add(register: Callable[[Celery], object]) -> None:
        def receiver(sender: Celery, **_: Any) -> None:
            register(sender)

        import_modules.connect(receiver, weak=False)
        receivers.append(receiver)

    yield add
    for receiver in receivers:
        import_modules.disconnect(receiver)


class Echo(TaskModel):
    """Input and output of the test tasks below."""

    value: int


def echo(payload: Echo) -> Echo:
    """A typed task body that returns its input."""
    return payload


@pytest.fixture
def same_short_name(at_start_up: RegisterTasks) -> tuple[str, str]:
    """Two typed tasks called ``echo`` in two modules, on every app of the test."""
    names = ("extra.one.echo", "extra.two.echo")

    def register(app: Celery) -> None:
        for name in names:
            # cast: the stubs have no overload for Celery's pydantic options.
            cast(Any, app.task)(
                name=name,
                shared=False,
                base=TypedTask,
                pydantic=True,
                input_model=Echo,
                output_model=Echo,
            )(echo)

    at_start_up(register)
    return names


@pytest.fixture
def local_settings(tmp_path: Path) -> Settings:
    """The local profile, with its data folder inside the test's tmp_path."""
    return load_settings("local", env_file=None).model_copy(update={"data_dir": tmp_path / "data"})


@pytest.fixture
def gateway() -> RecordingGateway:
    """A gateway that always delivers; tests may set failures."""
    return RecordingGateway()


@pytest.fixture
def local_app(local_settings: Settings, gateway: RecordingGateway) -> ProjectCelery:
    """An app on the embedded broker whose tasks use a file ledger and the fake gateway."""
    provider = ResourceProvider(
        local_settings,
        factory=lambda settings: Resources(
            settings=settings,
            ledger=DirectoryLedger(settings.data_dir / "ledger"),
            gateway=gateway,
        ),
    )
    return create_app(local_settings, provider)
