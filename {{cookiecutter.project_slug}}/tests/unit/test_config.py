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

    assert found["worker.max_tasks_per_child"] == (10_000, "default")
    assert found["broker.url"] == ("filesystem://localhost/", "config/local.toml")
    assert found["tasks.soft_time_limit"] == (30.0, ".env")
    assert found["worker.concurrency"] == (4, "environment")


def test_profile_comes_from_app_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "test")
    assert active_profile() is Profile.TEST
    assert active_profile("local") is Profile.LOCAL


def test_unknown_profile_names_the_choices() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings("prod")
    assert str(caught.value) == (
        "profile (--profile): 'prod' is not a profile; use one of local, test, production"
    )


def test_unknown_key_in_a_profile_file_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "read_profile", lambda _: {"broker": {"urll": "redis://x"}})
    with pytest.raises(ConfigError) as caught:
        load_settings("local", env_file=None)
    assert str(caught.value) == (
        f"broker.urll ({ENV_PREFIX}BROKER__URLL, from config/local.toml): "
        "not a setting; check the spelling against the README's settings table"
    )


def test_unknown_key_in_dotenv_is_an_error(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"{ENV_PREFIX}WORKER__CONCURENCY=3\n{ENV_PREFIX}WORKERS__QUEUES=[]\n")
    with pytest.raises(ConfigError) as caught:
        load_settings("local", env_file=env_file)
    assert str(caught.value).splitlines() == [
        (
            f"worker.concurency ({ENV_PREFIX}WORKER__CONCURENCY, from .env): "
            "not a setting; check the spelling against the README's settings table"
        ),
        (
            f"workers.queues ({ENV_PREFIX}WORKERS__QUEUES, from .env): "
            "not a setting; check the spelling against the README's settings table"
        ),
    ]


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
    with pytest.raises(ConfigError) as caught:
        load_settings("local", env_file=None)
    assert str(caught.value) == (
        f"tasks ({ENV_PREFIX}TASKS__*, from environment): soft_time_limit (100) must be "
        "lower than time_limit (90), so a task can clean up before it is killed"
    )


def test_production_lists_every_development_value_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings("production", env_file=None)
    lines = str(caught.value).splitlines()
    for name in ("broker", "results"):
        variable = f"{ENV_PREFIX}{name.upper()}__PASSWORD"
        assert f"{name}.password ({variable}, default): missing; production needs one" in lines
    assert (
        f"results.url ({ENV_PREFIX}RESULTS__URL, from config/production.toml): redis:// is not "
        "encrypted; use rediss:// or, on a private network, "
        f"set {ENV_PREFIX}RESULTS__ALLOW_PLAINTEXT=true"
    ) in lines


def test_production_rejects_localhost_and_default_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}BROKER__URL", "amqp://localhost:5672//")
    monkeypatch.setenv(f"{ENV_PREFIX}BROKER__USERNAME", "guest")
    monkeypatch.setenv(f"{ENV_PREFIX}BROKER__PASSWORD", "guest")
    monkeypatch.setenv(f"{ENV_PREFIX}RESULTS__URL", "file://")
    monkeypatch.setenv(f"{ENV_PREFIX}RESULTS__PASSWORD", "s3cret-enough")
    with pytest.raises(ConfigError) as caught:
        load_settings("production", env_file=None)
    lines = str(caught.value).splitlines()
    broker_url = f"broker.url ({ENV_PREFIX}BROKER__URL, from environment): "
    for expected in (
        broker_url + "points at localhost; name the real host",
        (
            f"broker.password ({ENV_PREFIX}BROKER__PASSWORD, from environment): "
            "a well-known default; set a real one"
        ),
        (
            f"broker.username ({ENV_PREFIX}BROKER__USERNAME, from environment): "
            "the default 'guest' account; use the app's own user"
        ),
        (
            f"results.url ({ENV_PREFIX}RESULTS__URL, from environment): "
            "file:// is a development transport"
        ),
        broker_url + "amqp:// is not encrypted; use amqps:// or, on a private network, "
        f"set {ENV_PREFIX}BROKER__ALLOW_PLAINTEXT=true",
    ):
        assert expected in lines


def test_production_rejects_a_password_inside_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}RESULTS__URL", "rediss://:s3cret@cache.internal:6380/1")
    with pytest.raises(ConfigError) as caught:
        load_settings("production", env_file=None)
    assert (
        f"results.url ({ENV_PREFIX}RESULTS__URL, from environment): "
        f"embeds a password; move it to {ENV_PREFIX}RESULTS__PASSWORD"
    ) in str(caught.value).splitlines()
    assert "s3cret" not in str(caught.value)


def test_credentials_in_the_url_and_in_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Both would be joined into redis://app:secret@app@host/1, a malformed URL.
    monkeypatch.setenv(f"{ENV_PREFIX}RESULTS__URL", "redis://app@127.0.0.1:6379/1")
    monkeypatch.setenv(f"{ENV_PREFIX}RESULTS__PASSWORD", "secret")
    with pytest.raises(ConfigError) as caught:
        load_settings("local", env_file=None)
    assert str(caught.value) == (
        f"results ({ENV_PREFIX}RESULTS__*, from environment): url holds credentials and "
        "username/password are set too; keep them in username and password only"
    )


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


def production_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """Everything the production profile asks for, so only the case under test fails."""
    monkeypatch.setenv(f"{ENV_PREFIX}BROKER__USERNAME", "app")
    monkeypatch.setenv(f"{ENV_PREFIX}BROKER__PASSWORD", "broker-secret")
    monkeypatch.setenv(f"{ENV_PREFIX}RESULTS__PASSWORD", "results-secret")
    monkeypatch.setenv(f"{ENV_PREFIX}BROKER__ALLOW_PLAINTEXT", "true")
    monkeypatch.setenv(f"{ENV_PREFIX}RESULTS__ALLOW_PLAINTEXT", "true")
{%- if cookiecutter.include_api %}
    monkeypatch.setenv(f"{ENV_PREFIX}API__API_KEY", "api-secret")
{%- endif %}


@pytest.mark.parametrize("layer", ["environment", ".env", "config/production.toml"])
def test_no_settings_layer_can_change_the_profile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, layer: str
) -> None:
    production_values(monkeypatch)
    monkeypatch.setenv("APP_ENV", "production")
    env_file = tmp_path / ".env"
    env_file.write_text("")
    assert load_settings(env_file=env_file).profile is Profile.PRODUCTION
    if layer == "environment":
        monkeypatch.setenv(f"{ENV_PREFIX}PROFILE", "local")
    elif layer == ".env":
        env_file.write_text(f"{ENV_PREFIX}PROFILE=local\n")
    else:
        production = loader.read_profile(Profile.PRODUCTION)
        monkeypatch.setattr(loader, "read_profile", lambda _: {**production, "profile": "local"})
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=env_file)
    assert str(caught.value) == (
        f"profile ({ENV_PREFIX}PROFILE, from {layer}): "
        "chosen only by --profile or APP_ENV; remove it here"
    )


@pytest.mark.parametrize(
    "url",
    [
        "redis://cache.internal:6379/0",
        "amqp://rabbit.internal:5672//",
        "pyamqp://rabbit.internal:5672//",
        "librabbitmq://rabbit.internal:5672//",
        "sentinel://sentinel.internal:26379",
        "redis+socket:///run/redis.sock",
    ],
)
def test_production_refuses_every_plaintext_scheme(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    production_values(monkeypatch)
    monkeypatch.setenv(f"{ENV_PREFIX}BROKER__ALLOW_PLAINTEXT", "false")
    monkeypatch.setenv(f"{ENV_PREFIX}BROKER__URL", url)
    with pytest.raises(ConfigError) as caught:
        load_settings("production", env_file=None)
    scheme = url.partition("://")[0]
    assert str(caught.value).startswith(
        f"broker.url ({ENV_PREFIX}BROKER__URL, from environment): {scheme}:// is not encrypted; "
    )


@pytest.mark.parametrize("url", ["rediss://cache.internal:6380/0", "amqps://rabbit.internal//"])
def test_production_accepts_tls_schemes(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    production_values(monkeypatch)
    monkeypatch.setenv(f"{ENV_PREFIX}BROKER__ALLOW_PLAINTEXT", "false")
    monkeypatch.setenv(f"{ENV_PREFIX}BROKER__URL", url)
    assert load_settings("production", env_file=None).broker.url == url


def test_an_invalid_log_level_is_one_line_naming_its_layer(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"{ENV_PREFIX}LOG__LEVEL=LOUD\n")
    with pytest.raises(ConfigError) as caught:
        load_settings("local", env_file=env_file)
    assert str(caught.value) == (
        f"log.level ({ENV_PREFIX}LOG__LEVEL, from .env): 'LOUD' is not a log level; "
        "use one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
    )


def test_log_level_takes_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}LOG__LEVEL", "debug")
    assert load_settings("local", env_file=None).log.level == "DEBUG"


def test_type_errors_name_key_variable_layer_and_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}WORKER__CONCURRENCY", "zero")
    monkeypatch.setenv(f"{ENV_PREFIX}WORKER__QUEUES", '["default", 7]')
    monkeypatch.setattr(loader, "read_profile", lambda _: {"log": {"json_format": "maybe"}})
    with pytest.raises(ConfigError) as caught:
        load_settings("local", env_file=None)
    assert str(caught.value).splitlines() == [
        (
            f"worker.queues ({ENV_PREFIX}WORKER__QUEUES, from environment): "
            "item 1: input should be a valid string (got 7)"
        ),
        (
            f"worker.concurrency ({ENV_PREFIX}WORKER__CONCURRENCY, from environment): "
            "input should be a valid integer, unable to parse string as an integer (got 'zero')"
        ),
        (
            f"log.json_format ({ENV_PREFIX}LOG__JSON_FORMAT, from config/local.toml): "
            "input should be a valid boolean, unable to interpret input (got 'maybe')"
        ),
    ]


def test_a_list_that_is_not_json_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}WORKER__QUEUES", "default,cpu")
    with pytest.raises(ConfigError) as caught:
        load_settings("local", env_file=None)
    assert str(caught.value).startswith(
        f"worker ({ENV_PREFIX}WORKER__*, from environment): a value is not valid JSON ("
    )
    assert "\n" not in str(caught.value)


def test_a_bad_secret_is_reported_without_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "read_profile", lambda _: {"broker": {"password": 12345}})
    with pytest.raises(ConfigError) as caught:
        load_settings("local", env_file=None)
    assert str(caught.value) == (
        f"broker.password ({ENV_PREFIX}BROKER__PASSWORD, from config/local.toml): "
        "input should be a valid string"
    )


def test_dotenv_ignores_unprefixed_variables_but_takes_app_env(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "APP_ENV=test\nREDIS_PASSWORD=change-me\nAPI_KEY=change-me\n"
        f"{ENV_PREFIX}WORKER__CONCURRENCY=3\n"
    )
    settings = load_settings(env_file=env_file)
    assert settings.profile is Profile.TEST
    assert settings.worker.concurrency == 3


def test_the_profile_comes_from_option_then_environment_then_dotenv(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("APP_ENV=test\n")
    assert active_profile(env_file=env_file) is Profile.TEST
    monkeypatch.setenv("APP_ENV", "local")
    assert active_profile(env_file=env_file) is Profile.LOCAL
    assert active_profile("production", env_file=env_file) is Profile.PRODUCTION
    monkeypatch.delenv("APP_ENV")
    assert active_profile(env_file=None) is Profile.LOCAL
    env_file.write_text("APP_ENV=staging\n")
    with pytest.raises(ConfigError) as caught:
        active_profile(env_file=env_file)
    assert str(caught.value) == (
        "profile (APP_ENV, from .env): 'staging' is not a profile; "
        "use one of local, test, production"
    )


def test_production_checks_run_when_dotenv_chooses_production(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"APP_ENV=production\n{ENV_PREFIX}BROKER__PASSWORD=b\n{ENV_PREFIX}RESULTS__PASSWORD=r\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=env_file)
    assert f"broker.url ({ENV_PREFIX}BROKER__URL, from config/production.toml): " in str(
        caught.value
    )


def test_kubernetes_scaling_is_refused_outside_the_production_profile_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # KEDA reads the committed keda.yaml: from the environment the value would do nothing.
    monkeypatch.setenv(f"{ENV_PREFIX}WORKER__KEDA__MAX_REPLICAS", "3")
    env_file = tmp_path / ".env"
    env_file.write_text(f"{ENV_PREFIX}WORKER__CPU__KEDA__MIN_REPLICAS=0\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=env_file)
    refusal = "read only by `kubernetes` (it writes keda.yaml); set it in config/production.toml"
    assert str(caught.value).splitlines() == [
        f"worker.keda.max_replicas ({ENV_PREFIX}WORKER__KEDA__MAX_REPLICAS, from environment): "
        + refusal,
        f"worker.cpu.keda.min_replicas ({ENV_PREFIX}WORKER__CPU__KEDA__MIN_REPLICAS, from .env): "
        + refusal,
    ]


def test_an_empty_optional_value_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # `KEY=` as .env.example spells it: not an empty user, secret, path or environment.
    for key in (
        "BROKER__USERNAME",
        "BROKER__PASSWORD",
        "BROKER__TLS_CA_FILE",
        "RESULTS__TLS_KEY_FILE",
        "SENTRY__DSN",
        "SENTRY__ENVIRONMENT",
{%- if cookiecutter.include_api %}
        "API__API_KEY",
{%- endif %}
    ):
        monkeypatch.setenv(f"{ENV_PREFIX}{key}", "")
    settings = load_settings("local", env_file=None)
    assert settings.broker.username is None
    assert settings.broker.password is None
    assert settings.broker.tls_ca_file is None
    assert settings.results.tls_key_file is None
    assert settings.sentry.dsn is None
    assert settings.sentry.environment is None
{%- if cookiecutter.include_api %}
    assert settings.api.api_key is None
{%- endif %}


def test_a_valid_sentry_dsn_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    dsn = "https://public@o1.ingest.sentry.io/42"
    monkeypatch.setenv(f"{ENV_PREFIX}SENTRY__DSN", dsn)
    settings = load_settings("local", env_file=None)
    assert settings.sentry.dsn is not None
    assert settings.sentry.dsn.get_secret_value() == dsn


@pytest.mark.parametrize(
    ("dsn", "reason"),
    [
        ("public@o1.ingest.sentry.io/42", "Unsupported scheme ''"),
        ("https://o1.ingest.sentry.io/42", "Missing public key"),
        ("https://public@o1.ingest.sentry.io/project", "Invalid project in DSN ('project')"),
    ],
)
def test_a_bad_sentry_dsn_is_one_line_with_sentrys_reason(
    monkeypatch: pytest.MonkeyPatch, dsn: str, reason: str
) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}SENTRY__DSN", dsn)
    with pytest.raises(ConfigError) as caught:
        load_settings("local", env_file=None)
    assert str(caught.value).startswith(
        f"sentry.dsn ({ENV_PREFIX}SENTRY__DSN, from environment): "
        f"not a valid Sentry DSN ({reason}); "
    )
    assert "\n" not in str(caught.value)
