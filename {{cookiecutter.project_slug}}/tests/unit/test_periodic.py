"""beat's schedule from settings, checked at start-up, and RedBeat's configuration."""

from __future__ import annotations

import json
import warnings
from datetime import timedelta
from pathlib import Path

import pytest
from celery.schedules import crontab
from celery.schedules import schedule as interval
from redbeat.schedulers import RedBeatConfig  # type: ignore[import-untyped]  # no stubs

from {{ cookiecutter.package_name }}.celery_app import (
    create_app,
)
from {{ cookiecutter.package_name }}.config import (
    ConfigError,
    Settings,
    load_settings,
)
from {{ cookiecutter.package_name }}.config.settings import (
    ENV_PREFIX,
)
from {{ cookiecutter.package_name }}.periodic import (
    REDBEAT_SCHEDULER,
    scheduler_config,
)

SCHEDULE = f"{ENV_PREFIX}BEAT__SCHEDULE"


def with_schedule(monkeypatch: pytest.MonkeyPatch, **entries: object) -> None:
    """Set ``beat.schedule`` through its environment variable, as JSON."""
    monkeypatch.setenv(SCHEDULE, json.dumps(entries))


def test_entries_become_celery_schedule_with_the_model_as_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with_schedule(
        monkeypatch,
        often={"task": "process_data", "schedule": 30, "payload": {"value": 1, "label": "a"}},
        nightly={
            "task": "record_audit_event",
            "schedule": "0 3 * * 1-5",
            "payload": {"event_id": "evt-nightly", "actor": "beat", "action": "tick"},
        },
    )
    app = create_app(load_settings("test", env_file=None))
    schedule = app.conf.beat_schedule
    assert set(schedule) == {"often", "nightly"}
    often = schedule["often"]
    assert often["task"] == "{{ cookiecutter.package_name }}.tasks.data.process_data"
    assert often["args"] == ({"value": 1, "label": "a"},)
    assert often["schedule"] == interval(timedelta(seconds=30))
    assert schedule["nightly"]["schedule"] == crontab(hour=3, minute=0, day_of_week="1-5")


def test_the_local_sample_entry_is_valid() -> None:
    app = create_app(load_settings("local", env_file=None))
    assert list(app.conf.beat_schedule) == ["sample_every_minute"]


def test_production_ships_no_entry() -> None:
    assert Settings().beat.schedule == {}


def test_a_payload_that_fails_the_input_model_names_entry_and_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with_schedule(
        monkeypatch,
        nightly_report={"task": "process_data", "schedule": 60, "payload": {"value": "x"}},
    )
    with pytest.raises(ConfigError) as caught:
        create_app(load_settings("test", env_file=None))
    variable = f"{ENV_PREFIX}BEAT__SCHEDULE__NIGHTLY_REPORT__PAYLOAD"
    where = f"beat.schedule.nightly_report.payload ({variable}, from environment)"
    assert str(caught.value).splitlines() == [
        f"{where}: invalid input for process_data: value: Input should be a valid integer",
        f"{where}: invalid input for process_data: label: Field required",
    ]


def test_an_unknown_task_is_named_with_the_known_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    with_schedule(monkeypatch, cleanup={"task": "proces_data", "schedule": 60})
    with pytest.raises(ConfigError, match=r"beat\.schedule\.cleanup\.task .*'proces_data' is not"):
        create_app(load_settings("test", env_file=None))


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        (0, "is neither seconds"),
        ("every minute", "is neither seconds"),
        ("70 * * * *", "'70 * * * *' is not a valid crontab: Invalid end range: 70 > 59"),
        (True, "is neither seconds"),
        ("inf", "is neither seconds"),
    ],
)
def test_a_bad_schedule_is_refused_when_settings_load(
    monkeypatch: pytest.MonkeyPatch, schedule: object, expected: str
) -> None:
    with_schedule(monkeypatch, job={"task": "process_data", "schedule": schedule})
    with pytest.raises(ConfigError) as caught:
        load_settings("test", env_file=None)
    assert str(caught.value).startswith("beat.schedule.job.schedule (")
    assert expected in str(caught.value)


def test_the_lock_timeout_is_whole_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    # RedBeat extends the lock by int(lock_timeout): 0.5 would extend it to nothing.
    monkeypatch.setenv(f"{ENV_PREFIX}BEAT__LOCK_TIMEOUT", "0.5")
    with pytest.raises(ConfigError, match=r"beat\.lock_timeout .*valid integer"):
        load_settings("test", env_file=None)


def test_seconds_may_come_as_a_string() -> None:
    entry = {"job": {"task": "process_data", "schedule": "2.5", "payload": {}}}
    assert Settings(beat={"schedule": entry}).beat.schedule["job"].schedule == 2.5


def test_a_lock_shorter_than_two_ticks_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}BEAT__LOCK_TIMEOUT", "5")
    monkeypatch.setenv(f"{ENV_PREFIX}BEAT__MAX_INTERVAL", "3")
    with pytest.raises(
        ConfigError, match=r"lock_timeout \(5\) must be at least twice max_interval"
    ):
        load_settings("test", env_file=None)


def test_redbeat_reads_the_results_redis_with_its_credentials_and_the_prefix() -> None:
    settings = Settings(
        results={"url": "rediss://cache.internal:6380/1", "username": "app", "password": "s3cr:t"},
        beat={"key_prefix": "shop:beat:", "lock_timeout": 12, "max_interval": 2},
    )
    config = scheduler_config(settings, "rediss://app:s3cr%3At@cache.internal:6380/1")
    assert config["beat_scheduler"] == REDBEAT_SCHEDULER
    assert config["beat_max_loop_interval"] == 2
    assert config["redbeat_redis_use_ssl"]["ssl_cert_reqs"] is not None
    app = create_app(load_settings("test", env_file=None))
    app.conf.update(config)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback to the broker's settings
        redbeat = RedBeatConfig(app)
    assert redbeat.redis_url == "rediss://app:s3cr%3At@cache.internal:6380/1"
    assert redbeat.lock_key == "shop:beat::lock"
    assert redbeat.lock_timeout == 12
    assert redbeat.schedule_key == "shop:beat::schedule"


def test_the_app_config_points_redbeat_at_the_results_store() -> None:
    settings = load_settings("test", env_file=None)
    config = create_app(settings).conf
    assert config.beat_scheduler == REDBEAT_SCHEDULER
    assert config.redbeat_redis_url == settings.results.url
    assert config.redbeat_key_prefix == "{{ cookiecutter.project_slug }}:redbeat:"
    assert config.redbeat_lock_timeout == 3


def test_without_redis_beat_keeps_celerys_file_scheduler(tmp_path: Path) -> None:
    config = create_app(load_settings("local", env_file=None)).conf
    assert config.beat_scheduler == "celery.beat:PersistentScheduler"
    assert "redbeat_redis_url" not in config
