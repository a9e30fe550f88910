"""Configuration layers, validation, provenance and masking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from {{ cookiecutter.package_name }}.config import (
    ConfigError,
    Profile,
    Settings,
    active_profile,
    explain,
    load_settings,
    loader,
)
from {{ cookiecutter.package_name }}.config.settings import (
    ENV_PREFIX,
)


def sources(settings: Settings, env_file: Path | None = None) -> dict[str, Any]:
    """Map each key to (value, source)."""
    return {row.key: (row.value, row.source) for row in explain(settings, env_file)}


def test_each_layer_overrides_the_one_below(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"{ENV_PREFIX}TASKS__SOFT_TIME_LIMIT=30\n{ENV_PREFIX}WORKER__CONCURRENCY=3\n"
    )
    monkeypatch.setenv(f"{ENV_PREFIX}WORKER__CONCURRENCY", "4")

    settings = load_settings("local", env_file=env_file)
    found = sources(settings, env_file)

    assert found["worker.max_tasks_per_child"] == (1000, "default")
    assert found["broker.url"] == ("filesystem://localhost/", "config/local.toml")
    assert found["tasks.soft_time_limit"] == (30.0, ".env")
    assert found["worker.concurrency"] == (4, "environment")


def test_profile_comes_from_app_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "test")
    assert active_profile() is Profile.TEST
    assert active_profile("local") is Profile.LOCAL


def test_unknown_profile_names_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"unknown profile 'prod'.*local, test, production"):
        load_settings("prod")


def test_unknown_key_in_a_profile_file_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "read_profile", lambda _: {"broker": {"urll": "redis://x"}})
    with pytest.raises(ConfigError, match=r"broker\.urll"):
        load_settings("local", env_file=None)


def test_unknown_key_in_dotenv_is_an_error(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"{ENV_PREFIX}WORKER__CONCURENCY=3\n")
    with pytest.raises(ConfigError, match="concurency"):
        load_settings("local", env_file=env_file)


def test_invalid_toml_is_reported_with_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.resources.files", lambda _: _BrokenFiles())
    with pytest.raises(ConfigError, match=r"config/local.toml is not valid TOML"):
        load_settings("local", env_file=None)


class _BrokenFiles:
    def joinpath(self, _: str) -> _BrokenFiles:
        return self

    def read_text(self) -> str:
        return "[broker\n"


def test_soft_limit_must_be_below_hard_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}TASKS__SOFT_TIME_LIMIT", "100")
    with pytest.raises(ConfigError, match="soft_time_limit must be lower"):
        load_settings("local", env_file=None)


def test_production_lists_every_development_value_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings("production", env_file=None)
    message = str(caught.value)
    assert "broker.password is missing" in message
    assert "results.password is missing" in message


def test_production_rejects_localhost_and_default_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}BROKER__URL", "amqp://guest:guest@localhost:5672//")
    monkeypatch.setenv(f"{ENV_PREFIX}BROKER__USERNAME", "guest")
    monkeypatch.setenv(f"{ENV_PREFIX}BROKER__PASSWORD", "guest")
    monkeypatch.setenv(f"{ENV_PREFIX}RESULTS__URL", "file://")
    monkeypatch.setenv(f"{ENV_PREFIX}RESULTS__PASSWORD", "s3cret-enough")
    with pytest.raises(ConfigError) as caught:
        load_settings("production", env_file=None)
    message = str(caught.value)
    for expected in (
        "broker.url points at localhost",
        "broker.url embeds a password",
        "broker.password is a well-known default",
        "broker.username is the default 'guest' account",
        "results.url uses the development transport file://",
        "broker.url is not encrypted; use amqps://",
    ):
        assert expected in message


def test_production_starts_with_real_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}BROKER__USERNAME", "app")
    monkeypatch.setenv(f"{ENV_PREFIX}BROKER__PASSWORD", "broker-secret")
    monkeypatch.setenv(f"{ENV_PREFIX}RESULTS__PASSWORD", "results-secret")
    monkeypatch.setenv(f"{ENV_PREFIX}BROKER__ALLOW_PLAINTEXT", "true")  # a private network
    monkeypatch.setenv(f"{ENV_PREFIX}RESULTS__URL", "rediss://cache.internal:6380/1")
{%- if cookiecutter.include_api %}
    monkeypatch.setenv(f"{ENV_PREFIX}API__API_KEY", "api-secret")
{%- endif %}
    settings = load_settings("production", env_file=None)
    found = sources(settings)
    assert found["broker.password"] == ("**********", "environment")
    assert found["log.json_format"] == (True, "config/production.toml")
    assert "broker-secret" not in repr(settings)
