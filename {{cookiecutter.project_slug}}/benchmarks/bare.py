"""Bare Celery: the test profile's broker and result store, Celery's defaults for the rest.

``celery -A benchmarks.bare_worker worker`` serves it; the settings benchmark turns
single production settings on over this baseline, one row each.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery import Celery

from {{ cookiecutter.package_name }}.celery_app import (
    celery_config,
)
from {{ cookiecutter.package_name }}.config import (
    load_settings,
)

from . import plain  # noqa: F401 - registers the plain task on every app, this one too


def bare_app(overrides: Mapping[str, Any] | None = None) -> Celery:
    """A Celery app with nothing of the project's but its broker and result URLs."""
    project = celery_config(load_settings("test", env_file=None))
    app = Celery(
        "bare",
        broker=project["broker_url"],
        backend=project["result_backend"],
        set_as_current=False,
    )
    app.conf.update(overrides or {})
    return app
