"""Periodic tasks: beat's schedule from settings, and one beat sending at a time.

Celery beat has no lock of its own: two beats (a second replica, a restarted
container beside a hung one) would each send every entry. RedBeat (celery-redbeat)
keeps the schedule and a lock in the results Redis: only the lock holder sends, and
a standby beat takes the lock once the holder stops extending it (it died). The
local profile has no Redis: there beat keeps Celery's schedule file in data_dir, on
one machine, and nothing stops a second beat (see README, Periodic tasks).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.schedules import BaseSchedule, crontab
from celery.schedules import schedule as interval
from pydantic import ValidationError

from .config import ConfigError, Settings, setting_problem
from .tasks.typed import describe_errors, typed_tasks

REDBEAT_SCHEDULER = "redbeat.RedBeatScheduler"
# The local profile's schedule file (last run of each entry), under data_dir.
SCHEDULE_FILE = "celerybeat-schedule"


def uses_redbeat(settings: Settings) -> bool:
    """Whether beat keeps its schedule and lock in Redis (the results store)."""
    return settings.results.is_redis


def scheduler_config(settings: Settings, redis_url: str) -> dict[str, Any]:
    """Celery settings for beat; ``redis_url`` is the results URL with its credentials."""
    beat = settings.beat
    config: dict[str, Any] = {"beat_max_loop_interval": beat.max_interval}
    if not uses_redbeat(settings):
        return config
    config |= {
        "beat_scheduler": REDBEAT_SCHEDULER,
        "redbeat_redis_url": redis_url,
        "redbeat_key_prefix": beat.key_prefix,
        "redbeat_lock_timeout": beat.lock_timeout,
        # Set, so RedBeat does not fall back to the broker's transport options. A beat
        # that loses Redis retries for a lock timeout: longer, its lock is gone anyway
        # and it exits (to be restarted as a standby) rather than send beside the new one.
        "redbeat_redis_options": {"retry_period": beat.lock_timeout},
    }
    if settings.results.uses_tls:
        config["redbeat_redis_use_ssl"] = settings.results.tls_options()
    return config


def beat_schedule(app: Celery, settings: Settings) -> dict[str, dict[str, Any]]:
    """Celery's ``beat_schedule`` from ``beat.schedule``, each payload checked now.

    A typed task gets its input model as JSON, as ``delay`` would send it. ConfigError
    names the entry and the field of every entry that could never run.
    """
    tasks = typed_tasks(app)
    schedule: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for name, entry in settings.beat.schedule.items():
        key = f"beat.schedule.{name}"
        typed = tasks.get(entry.task)
        if typed is None:
            known = ", ".join(sorted(tasks))
            message = f"{entry.task!r} is not a typed task; known tasks: {known}"
            problems.append(setting_problem(settings, f"{key}.task", message))
            continue
        try:
            model = typed.input_model.model_validate(entry.payload)
        except ValidationError as error:
            problems += [
                setting_problem(settings, f"{key}.payload", f"invalid input for {entry.task}: {e}")
                for e in describe_errors(error)
            ]
            continue
        schedule[name] = {
            "task": typed.name,
            "schedule": celery_schedule(entry.schedule),
            "args": (model.model_dump(mode="json"),),
        }
    if problems:
        raise ConfigError("\n".join(problems))
    return schedule


def celery_schedule(every: float | str) -> BaseSchedule:
    """Seconds as an interval, a string as a crontab (validated with the settings)."""
    if isinstance(every, str):
        return crontab.from_string(every)
    return interval(every)
