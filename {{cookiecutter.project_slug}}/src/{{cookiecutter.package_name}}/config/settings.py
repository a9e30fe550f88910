"""The settings model: every knob, its type, its default and its rules."""

from __future__ import annotations

import math
import ssl
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args
from urllib.parse import urlsplit

from celery.schedules import ParseException, crontab
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    SecretStr,
    model_validator,
)
from pydantic_core import PydanticCustomError
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
# The only encrypted schemes: TLS options are applied to these alone (celery_app.py).
# Every other scheme kombu or Celery accepts is plaintext here: redis, amqp, pyamqp,
# librabbitmq, sentinel, redis+socket, ... so production checks "not TLS", not a list.
TLS_SCHEMES = frozenset({"rediss", "amqps"})
TLS_COUNTERPARTS = {
    "redis": "rediss://",
    "amqp": "amqps://",
    "pyamqp": "amqps://",
    "librabbitmq": "amqps://",
}
DEVELOPMENT_SCHEMES = frozenset({"filesystem", "file", "memory"})
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)

Seconds = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]
CRONTAB_FIELDS = 5


def _empty_is_unset(value: object) -> object:
    """An empty value is no value: ``KEY=`` (as .env.example spells each one) means unset."""
    # Without this, an empty API key or DSN would count as set, and an empty path as ".".
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    return None if isinstance(text, str) and not text.strip() else value


# Optional settings: None, or a non-empty value.
OptionalStr = Annotated[str | None, BeforeValidator(_empty_is_unset)]
OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_empty_is_unset)]
OptionalPath = Annotated[Path | None, BeforeValidator(_empty_is_unset)]


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
    # Credentials stay out of the URL; celery_app.py inserts them (Redis ACL user too).
    username: OptionalStr = None
    password: OptionalSecret = None
    # TLS is on for rediss:// and amqps:// URLs; these name PEM files when needed.
    tls_ca_file: OptionalPath = None
    tls_cert_file: OptionalPath = None
    tls_key_file: OptionalPath = None
    # The production profile refuses unencrypted URLs unless the network is private.
    allow_plaintext: bool = False

    @model_validator(mode="after")
    def _credentials_in_one_place(self) -> Self:
        # Both at once would give a malformed URL (user:secret@user@host).
        parts = urlsplit(self.url)
        if (parts.username or parts.password) and (self.username or self.password):
            raise ValueError(
                "url holds credentials and username/password are set too; "
                "keep them in username and password only"
            )
        return self

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
    # Redis only: an unacknowledged task is redelivered after this long, so it must
    # outlast the longest hard time limit or long tasks run twice.
    visibility_timeout: Seconds = 3600
    connection_timeout: Seconds = 5
    # RabbitMQ only: a publish returns once RabbitMQ has the message, so no caller is
    # told "sent" for a message a dropped connection lost. Each publish waits for it:
    # about 30 % of a single producer's rate (docs/performance.md).
    publisher_confirms: bool = True


class ResultSettings(ServiceSettings):
    """Where task results are stored, and for how long."""

    url: str = "redis://127.0.0.1:6379/1"
    expires: Seconds = 86400
    # Also store each task's name, arguments, worker and queue with its result (Celery's
    # result_extended). Arguments may hold personal data, so this is off by default.
    extended: bool = False


class TimeLimits(Section):
    """A soft limit (the task may clean up) and a hard limit (its process is killed)."""

    soft_time_limit: Seconds
    time_limit: Seconds

    @model_validator(mode="after")
    def _soft_limit_first(self) -> Self:
        if self.soft_time_limit >= self.time_limit:
            raise ValueError(
                f"soft_time_limit ({self.soft_time_limit:g}) must be lower than "
                f"time_limit ({self.time_limit:g}), so a task can clean up before it is killed"
            )
        return self


class CpuTimeLimits(TimeLimits):
    """The cpu queue's limits: shorter, so a runaway resize is stopped before it
    starves the queue. Defaults here, so setting one limit keeps the other."""

    soft_time_limit: Seconds = 20
    time_limit: Seconds = 30


class TaskSettings(TimeLimits):
    """Limits for every task, and for the CPU-bound tasks of the cpu queue."""

    soft_time_limit: Seconds = 60
    time_limit: Seconds = 90
    cpu: CpuTimeLimits = CpuTimeLimits()
    # A task whose runs died with their process (OOM, crash) this many times in a row
    # is not run again: its next delivery fails with WorkerLostTooOftenError.
    max_worker_losses: Annotated[int, Field(ge=1)] = 3
    # Largest JSON size of a task's arguments, in bytes; a bigger publish is refused in
    # the caller (payload_size.py). The broker, and the result store with
    # results.extended, keep every byte, and every worker process that takes the
    # message decodes all of it: pass a reference (a URL, an id) rather than the data.
    max_payload_bytes: Annotated[int, Field(ge=1)] = 262_144
    # render_thumbnail keeps every call's pixels, as the incident's version did: a leak
    # to find with `profile --memory` (README, Debugging). Refused by production.
    leak_thumbnails: bool = False


WorkerPool = Literal["prefork", "threads", "solo"]


class KedaSettings(Section):
    """How KEDA scales one queue's worker Deployment on Kubernetes.

    Read by ``kubernetes``, which writes deploy/kubernetes/base/keda.yaml from the
    defaults and config/production.toml; a running worker never reads them.
    """

    # 0 lets KEDA stop every worker of an idle queue; the next task then waits for a pod.
    min_replicas: Annotated[int, Field(ge=0)] = 1
    max_replicas: Annotated[int, Field(ge=1)] = 10
    # Seconds between two looks at the queue.
    polling_interval: Annotated[int, Field(ge=1)] = 15
    # Seconds below target before a replica is removed (KEDA's cooldownPeriod, and the
    # HPA's scale-down window): a short lull does not stop workers that are needed again.
    cooldown_period: Annotated[int, Field(ge=0)] = 300
    # Messages waiting per replica: KEDA runs ceil(waiting / queue_length) workers.
    queue_length: Annotated[int, Field(ge=1)] = 4

    @model_validator(mode="after")
    def _consistent_bounds(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) must not exceed max_replicas "
                f"({self.max_replicas}); raise max_replicas or lower min_replicas"
            )
        return self


class QueueWorkerSettings(Section):
    """The worker of one queue (``worker --queue NAME``): its pool and memory guard."""

    concurrency: Annotated[int, Field(ge=1)] = 2
    # prefork runs tasks in processes: the only pool CPU-bound Python work scales on,
    # and the only one the two recycling guards below apply to.
    pool: WorkerPool = "prefork"
    max_tasks_per_child: Annotated[int, Field(ge=1)] = 1000
    # KiB of resident memory before a pool process is replaced after its task.
    max_memory_per_child: Annotated[int, Field(ge=1024)] = 512_000
    keda: KedaSettings = KedaSettings()


class WorkerSettings(Section):
    """How a worker consumes and protects itself."""

    queues: tuple[str, ...] = ("default", "cpu")
    concurrency: Annotated[int, Field(ge=1)] = 2
    # Each replacement starts a new pool process: at 1,000 short tasks, that cost 10 to
    # 14 % of their throughput (docs/performance.md). The leak guard is the memory limit
    # below; this bounds slow drift under it. The cpu queue's long tasks keep 1,000.
    max_tasks_per_child: Annotated[int, Field(ge=1)] = 10_000
    # The memory-leak guard: a pool process above this resident size (KiB) is
    # replaced after its current task.
    max_memory_per_child: Annotated[int, Field(ge=1024)] = 512_000
    soft_shutdown_timeout: Annotated[float, Field(ge=0)] = 30
    # concurrency, pool, the two recycling guards and keda serve the default queue's
    # worker (and a worker consuming every queue at once); each other queue has its own
    # below, as tasks.<queue> holds its time limits.
    pool: WorkerPool = "prefork"
    keda: KedaSettings = KedaSettings()
    cpu: QueueWorkerSettings = QueueWorkerSettings()


class HeartbeatSettings(Section):
    """The worker's heartbeat file, read by ``probe --liveness|--readiness``."""

    # Seconds between writes of the heartbeat file (and checks of the consumer loop).
    interval: Seconds = 5
    # A heartbeat (or consumer loop) older than this fails liveness: the worker is wedged.
    max_age: Seconds = 60

    @model_validator(mode="after")
    def _room_for_late_writes(self) -> Self:
        if self.max_age < 2 * self.interval:
            raise ValueError(
                f"max_age ({self.max_age:g}) must be at least twice interval "
                f"({self.interval:g}), or a healthy worker fails liveness between two writes"
            )
        return self


class MetricsSettings(Section):
    """Prometheus metrics: each worker's ``/metrics`` port{% if cookiecutter.include_api %}, and ``/metrics`` on the API{% endif %}."""

    # Off by default, so a development machine opens no port; on in production.
    enabled: bool = False
    # Interface a worker's metrics server listens on ("0.0.0.0" in a container).
    host: str = "127.0.0.1"
    # The default queue's worker (and a worker of several queues) serves here; the worker
    # of one other queue on this port plus the queue's place in QUEUES (cpu: port + 1), so
    # the workers of one host never clash. At most 65534, to leave cpu its port.
    port: Annotated[int, Field(ge=1, le=65534)] = 9808


def _log_level(value: object) -> object:
    """Any case of a level name; anything else is refused naming the choices."""
    if isinstance(value, str) and value.upper() in LOG_LEVELS:
        return value.upper()
    raise PydanticCustomError(
        "log_level",
        "{value} is not a log level; use one of {choices}",
        {"value": repr(value), "choices": ", ".join(LOG_LEVELS)},
    )


class LogSettings(Section):
    """Log level and shape."""

    level: Annotated[LogLevel, BeforeValidator(_log_level)] = "INFO"
    json_format: bool = False
    # Task arguments and results may hold personal data: unless this is on, Celery's
    # log records carry a placeholder in their place.
    task_data: bool = False


def _schedule(value: object) -> object:
    """Seconds (a positive number) or a five-field crontab string, checked by Celery."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < math.inf:
        return float(value)
    if isinstance(value, str):
        try:
            return _schedule(float(value))  # "30" from an environment variable
        except ValueError:
            pass
        if len(value.split()) == CRONTAB_FIELDS:
            try:
                crontab.from_string(value)  # Celery's parser: beat accepts what passes here
            except (ValueError, ParseException) as error:
                raise PydanticCustomError(
                    "schedule",
                    "{value} is not a valid crontab: {error}",
                    {"value": repr(value), "error": str(error)},
                ) from None
            return value
    raise PydanticCustomError(
        "schedule",
        "{value} is neither seconds (a positive number) nor a crontab string "
        "(minute hour day-of-month month day-of-week, e.g. '0 3 * * *')",
        {"value": repr(value)},
    )


class PeriodicEntry(Section):
    """One periodic task: which typed task, how often, with what input."""

    # The short name of a typed task (`{{ cookiecutter.project_slug }} tasks` lists them).
    task: str
    # Seconds between runs, or a crontab string in UTC ("0 3 * * *": daily at 03:00).
    schedule: Annotated[float | str, BeforeValidator(_schedule)]
    # The task's input, validated against its input model when the app is built.
    payload: JsonValue = Field(default_factory=dict)


class BeatSettings(Section):
    """The periodic-task scheduler: one beat sends, a standby takes over when it dies."""

    # Keys of beat's schedule and lock in the results Redis; one prefix per deployment
    # sharing a Redis database, so their beats neither share a lock nor a schedule.
    key_prefix: Annotated[str, Field(min_length=1)] = "{{ cookiecutter.project_slug }}:redbeat:"
    # A beat extends its lock every tick; a standby takes over at most this long
    # (plus max_interval) after the holder died. Whole seconds: RedBeat extends the
    # lock by int(lock_timeout), so 0.5 would delete it.
    lock_timeout: Annotated[int, Field(ge=1)] = 30
    # The longest beat sleeps between ticks: how often the holder extends its lock and
    # a standby tries to take it.
    max_interval: Seconds = 5
    # Entries by name; empty by default (see README, Periodic tasks).
    schedule: dict[str, PeriodicEntry] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _lock_outlives_a_tick(self) -> Self:
        if self.lock_timeout < 2 * self.max_interval:
            raise ValueError(
                f"lock_timeout ({self.lock_timeout:g}) must be at least twice max_interval "
                f"({self.max_interval:g}): the holder extends its lock once a tick, and a "
                "lock that expires between ticks lets a second beat send too"
            )
        return self
{% if cookiecutter.include_api %}

class ApiSettings(Section):
    """The HTTP front door."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    workers: Annotated[int, Field(ge=1)] = 1
    # Sent by clients in the X-API-Key header; required by the production profile.
    api_key: OptionalSecret = None
    max_body_bytes: Annotated[int, Field(ge=1024)] = 1_048_576
    cors_origins: tuple[str, ...] = ()
    readiness_timeout: Seconds = 2
    # Reconnects a submit tries before answering 503 (the client retries): one renews a
    # connection the broker dropped; more ride out a failover but answer later.
    publish_retries: Annotated[int, Field(ge=0)] = 1
{% endif %}

class AutoscaleSettings(Section):
    """Pool size inside one worker, from its queues' backlog and the machine's load.

    Off: the pool has ``worker.concurrency`` processes. On: between ``min_processes``
    and ``max_processes`` (see README, Scaling).
    """

    enabled: bool = False
    min_processes: Annotated[int, Field(ge=1)] = 1
    max_processes: Annotated[int, Field(ge=1)] = 4
    # How often the autoscaler looks at the queues and the machine.
    interval: Seconds = 5
    # After a change, the size holds this long: a burst does not make the pool flap.
    cooldown: Seconds = 30
    # Fractions of all CPUs busy: grow only at or below the first, shrink above the
    # second; between the two the size holds (hysteresis).
    cpu_grow_below: Fraction = 0.75
    cpu_shrink_above: Fraction = 0.9

    @model_validator(mode="after")
    def _consistent_bounds(self) -> Self:
        if self.min_processes > self.max_processes:
            raise ValueError(
                f"min_processes ({self.min_processes}) must not exceed max_processes "
                f"({self.max_processes}); raise max_processes or lower min_processes"
            )
        if self.cpu_grow_below > self.cpu_shrink_above:
            raise ValueError(
                f"cpu_grow_below ({self.cpu_grow_below:g}) must not exceed cpu_shrink_above "
                f"({self.cpu_shrink_above:g}), or the pool would grow and shrink at one load"
            )
        return self


class TracingSettings(Section):
    """OpenTelemetry traces, off by default: HTTP request, publish and task run in one trace.

    Needs the ``tracing`` extra (see README, Tracing).
    """

    enabled: bool = False
    # The service.name resource attribute the tracing backend groups spans by.
    service_name: Annotated[str, Field(min_length=1)] = "{{ cookiecutter.project_slug }}"
    # An OTLP/HTTP (protobuf) traces endpoint: a collector, or a backend that takes OTLP.
    endpoint: Annotated[str, Field(pattern=r"^https?://")] = "http://127.0.0.1:4318/v1/traces"
    # Fraction of new traces recorded; a task follows the decision of the trace it
    # was published in, so a trace is kept or dropped whole.
    sample_ratio: Fraction = 1.0


def _sentry_dsn(dsn: SecretStr | None) -> SecretStr | None:
    """A DSN sentry-sdk accepts, checked by its own parser, so a bad one fails here in one
    line rather than in sentry_sdk.init with a traceback. The message never holds the key."""
    if dsn is not None:
        from sentry_sdk.utils import Dsn  # imported only once a DSN is set, as in error_reporting

        try:
            Dsn(dsn.get_secret_value())
        except ValueError as error:  # BadDsn, or a port that is not a number
            raise ValueError(
                f"not a valid Sentry DSN ({error}); copy it from the Sentry project's "
                "Settings > Client Keys (DSN), e.g. https://<key>@o0.ingest.sentry.io/<project>"
            ) from None
    return dsn


class SentrySettings(Section):
    """Error reports to Sentry, off until a DSN is set; task arguments are never sent."""

    dsn: Annotated[OptionalSecret, AfterValidator(_sentry_dsn)] = None
    # The environment reports are filed under; unset, the profile's name.
    environment: OptionalStr = None


class ExporterSettings(Section):
    """The Prometheus queue exporter (``exporter``): one per deployment."""

    # 127.0.0.1: only this machine can scrape it (production listens on 0.0.0.0).
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 9540


class Settings(BaseSettings):
    """The whole configuration of the project, validated once at start-up."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        # Only prefixed .env variables are settings: compose's REDIS_PASSWORD, APP_ENV
        # and the like share the file. A prefixed typo is still an unknown key, an error.
        dotenv_filtering="match_prefix",
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
    autoscale: AutoscaleSettings = AutoscaleSettings()
    heartbeat: HeartbeatSettings = HeartbeatSettings()
    metrics: MetricsSettings = MetricsSettings()
    beat: BeatSettings = BeatSettings()
    tracing: TracingSettings = TracingSettings()
    sentry: SentrySettings = SentrySettings()
    exporter: ExporterSettings = ExporterSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],  # noqa: ARG003 - pydantic-settings passes it by name
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - passed by name
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment beats .env beats the profile file (passed in as init values)."""
        return env_settings, dotenv_settings, init_settings

    @model_validator(mode="after")
    def _production_ready(self) -> Self:
        # Here, not in the loader, so no way of building settings skips the checks.
        if self.profile is Profile.PRODUCTION:
            problems = production_problems(self)
            if problems:
                raise ProductionValuesError(problems)
        return self


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a setting: its dotted key and what to do."""

    key: str
    message: str


class ProductionValuesError(ValueError):
    """The production profile found development values; ``problems`` lists each."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.key}: {p.message}" for p in problems))
        self.problems = problems


def environment_variable(key: str) -> str:
    """The environment variable that sets a dotted settings key, e.g. ``log.level``."""
    return ENV_PREFIX + key.replace(".", "__").upper()


def production_problems(settings: Settings) -> list[Problem]:
    """Every reason these settings are unsafe for production, all at once."""
    problems: list[Problem] = []
    services: tuple[tuple[str, ServiceSettings], ...] = (
        ("broker", settings.broker),
        ("results", settings.results),
    )
    for name, service in services:
        parts = urlsplit(service.url)
        scheme = service.scheme
        url, password = f"{name}.url", f"{name}.password"
        if scheme in DEVELOPMENT_SCHEMES:
            problems.append(Problem(url, f"{scheme}:// is a development transport"))
        elif scheme not in TLS_SCHEMES and not service.allow_plaintext:
            tls = TLS_COUNTERPARTS.get(scheme, "rediss:// or amqps://")
            problems.append(
                Problem(
                    url,
                    f"{scheme}:// is not encrypted; use {tls} or, on a private network, "
                    f"set {environment_variable(f'{name}.allow_plaintext')}=true",
                )
            )
        if parts.hostname in LOCAL_HOSTS:
            problems.append(Problem(url, f"points at {parts.hostname}; name the real host"))
        if parts.password is not None:
            problems.append(
                Problem(url, f"embeds a password; move it to {environment_variable(password)}")
            )
        if service.password is None:
            problems.append(Problem(password, "missing; production needs one"))
        elif service.password.get_secret_value() in DEFAULT_CREDENTIALS:
            problems.append(Problem(password, "a well-known default; set a real one"))
        if service.username in DEFAULT_CREDENTIALS:
            problems.append(
                Problem(f"{name}.username", "the default 'guest' account; use the app's own user")
            )
    if settings.tasks.leak_thumbnails:
        problems.append(
            Problem("tasks.leak_thumbnails", "leaks memory on purpose, for practice; remove it")
        )
{%- if cookiecutter.include_api %}
    if settings.api.api_key is None:
        problems.append(Problem("api.api_key", "missing; production needs one"))
{%- endif %}
    return problems
