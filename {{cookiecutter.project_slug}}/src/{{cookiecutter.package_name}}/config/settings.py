"""The settings model: every knob, its type, its default and its rules."""

from __future__ import annotations

import ssl
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "{{ cookiecutter.__env_prefix }}"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
DEFAULT_CREDENTIALS = frozenset({"guest"})
REDIS_SCHEMES = frozenset({"redis", "rediss"})
AMQP_SCHEMES = frozenset({"amqp", "amqps", "pyamqp"})
TLS_SCHEMES = frozenset({"rediss", "amqps"})
PLAINTEXT_SCHEMES = frozenset({"redis", "amqp"})
DEVELOPMENT_SCHEMES = frozenset({"filesystem", "file", "memory"})

Seconds = Annotated[float, Field(gt=0)]


class Profile(StrEnum):
    """Named configuration profiles, one TOML file each."""

    LOCAL = "local"
    TEST = "test"
    PRODUCTION = "production"


class Section(BaseModel):
    """Base of every settings section: unknown keys are typos, so they fail."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceSettings(Section):
    """A service reached by URL; its password is kept out of the URL."""

    url: str
    password: SecretStr | None = None
    # TLS is on for rediss:// and amqps:// URLs; these name PEM files when needed.
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # The production profile refuses unencrypted URLs unless the network is private.
    allow_plaintext: bool = False

    @property
    def scheme(self) -> str:
        """The URL scheme, e.g. ``redis`` or ``filesystem``."""
        return urlsplit(self.url).scheme

    @property
    def is_redis(self) -> bool:
        """Whether the service speaks the Redis protocol."""
        return self.scheme in REDIS_SCHEMES

    @property
    def is_amqp(self) -> bool:
        """Whether the service speaks AMQP (RabbitMQ)."""
        return self.scheme in AMQP_SCHEMES

    @property
    def uses_tls(self) -> bool:
        """Whether the URL asks for an encrypted connection."""
        return self.scheme in TLS_SCHEMES

    def tls_options(self) -> dict[str, Any]:
        """Certificate options, spelt for redis-py (``ssl_*``) or py-amqp."""
        prefix = "ssl_" if self.is_redis else ""
        files = {
            "ca_certs": self.tls_ca_file,
            "certfile": self.tls_cert_file,
            "keyfile": self.tls_key_file,
        }
        options: dict[str, Any] = {f"{prefix}{k}": str(v) for k, v in files.items() if v}
        options[f"{prefix}cert_reqs"] = ssl.CERT_REQUIRED
        return options


class BrokerSettings(ServiceSettings):
    """Where tasks are queued."""

    url: str = "{{ cookiecutter.__broker_url }}"
    username: str | None = None
    # Redis only: an unacknowledged task is redelivered after this long, so it must
    # outlast the longest hard time limit or long tasks run twice.
    visibility_timeout: Seconds = 3600
    connection_timeout: Seconds = 5


class ResultSettings(ServiceSettings):
    """Where task results are stored, and for how long."""

    url: str = "redis://127.0.0.1:6379/1"
    expires: Seconds = 86400


class TimeLimits(Section):
    """A soft limit (the task may clean up) and a hard limit (its process is killed)."""

    soft_time_limit: Seconds
    time_limit: Seconds

    @model_validator(mode="after")
    def _soft_limit_first(self) -> Self:
        if self.soft_time_limit >= self.time_limit:
            raise ValueError(
                "soft_time_limit must be lower than time_limit, "
                "so a task can clean up before it is killed"
            )
        return self


class TaskSettings(TimeLimits):
    """Limits for every task, and for the CPU-bound tasks of the cpu queue."""

    soft_time_limit: Seconds = 60
    time_limit: Seconds = 90
    # Shorter, so a runaway resize is stopped before it starves the cpu queue.
    cpu: TimeLimits = TimeLimits(soft_time_limit=20, time_limit=30)
    # A task whose runs died with their process (OOM, crash) this many times in a row
    # is not run again: its next delivery fails with WorkerLostTooOftenError.
    max_worker_losses: Annotated[int, Field(ge=1)] = 3


class WorkerSettings(Section):
    """How a worker consumes and protects itself."""

    queues: tuple[str, ...] = ("default", "cpu")
    concurrency: Annotated[int, Field(ge=1)] = 2
    max_tasks_per_child: Annotated[int, Field(ge=1)] = 1000
    # The memory-leak guard: a pool process above this resident size (KiB) is
    # replaced after its current task.
    max_memory_per_child: Annotated[int, Field(ge=1024)] = 512_000
    soft_shutdown_timeout: Annotated[float, Field(ge=0)] = 30


class LogSettings(Section):
    """Log level and shape."""

    level: str = "INFO"
    json_format: bool = False
{% if cookiecutter.include_api %}

class ApiSettings(Section):
    """The HTTP front door."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    workers: Annotated[int, Field(ge=1)] = 1
    # Sent by clients in the X-API-Key header; required by the production profile.
    api_key: SecretStr | None = None
    max_body_bytes: Annotated[int, Field(ge=1024)] = 1_048_576
    cors_origins: tuple[str, ...] = ()
    readiness_timeout: Seconds = 2
{% endif %}

class Settings(BaseSettings):
    """The whole configuration of the project, validated once at start-up."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        extra="forbid",
        frozen=True,
    )

    profile: Profile = Profile.LOCAL
    # Folder for the embedded broker, file results and local side effects.
    data_dir: Path = Path(".{{ cookiecutter.project_slug }}")
    broker: BrokerSettings = BrokerSettings()
    results: ResultSettings = ResultSettings()
    tasks: TaskSettings = TaskSettings()
    worker: WorkerSettings = WorkerSettings()
    log: LogSettings = LogSettings()
{%- if cookiecutter.include_api %}
    api: ApiSettings = ApiSettings()
{%- endif %}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment beats .env beats the profile file (passed in as init values)."""
        return env_settings, dotenv_settings, init_settings

    @model_validator(mode="after")
    def _production_ready(self) -> Self:
        if self.profile is Profile.PRODUCTION:
            problems = production_problems(self)
            if problems:
                raise ValueError(
                    "the production profile refuses development values:\n  - "
                    + "\n  - ".join(problems)
                )
        return self


def environment_variable(key: str) -> str:
    """The environment variable that sets a dotted settings key, e.g. ``log.level``."""
    return ENV_PREFIX + key.replace(".", "__").upper()


def production_problems(settings: Settings) -> list[str]:
    """Every reason these settings are unsafe for production, all at once."""
    problems: list[str] = []
    services: tuple[tuple[str, ServiceSettings], ...] = (
        ("broker", settings.broker),
        ("results", settings.results),
    )
    for name, service in services:
        parts = urlsplit(service.url)
        variable = f"{ENV_PREFIX}{name.upper()}__"
        if service.scheme in DEVELOPMENT_SCHEMES:
            problems.append(f"{name}.url uses the development transport {service.scheme}://")
        if service.scheme in PLAINTEXT_SCHEMES and not service.allow_plaintext:
            problems.append(
                f"{name}.url is not encrypted; use {service.scheme}s:// or, on a private "
                f"network, set {variable}ALLOW_PLAINTEXT=true"
            )
        if parts.hostname in LOCAL_HOSTS:
            problems.append(
                f"{name}.url points at {parts.hostname}; set {variable}URL to the real host"
            )
        if parts.password is not None:
            problems.append(f"{name}.url embeds a password; move it to {variable}PASSWORD")
        if service.password is None:
            problems.append(f"{name}.password is missing; set {variable}PASSWORD")
        elif service.password.get_secret_value() in DEFAULT_CREDENTIALS:
            problems.append(f"{name}.password is a well-known default")
    if settings.broker.username in DEFAULT_CREDENTIALS:
        problems.append("broker.username is the default 'guest' account")
{%- if cookiecutter.include_api %}
    if settings.api.api_key is None:
        problems.append(f"api.api_key is missing; set {ENV_PREFIX}API__API_KEY")
{%- endif %}
    return problems
