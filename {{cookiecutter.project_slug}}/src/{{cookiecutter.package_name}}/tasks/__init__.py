"""Tasks, one module per domain. ``typed`` holds the machinery they share.

Every module of this package is imported at start-up (``task_modules``), so a new
module's tasks register without being listed anywhere.
"""

from __future__ import annotations

import importlib
import pkgutil

# What PENDING means, for the CLI and API: the result store has nothing under the id.
PENDING_NOTE = (
    "no result stored: the task is queued or not yet started, the id is unknown, "
    "or the task stores no result (ignore_result)"
)
# Said when a task that stores no result is queued: its status will never change.
NO_RESULT_NOTE = (
    "this task stores no result (ignore_result): its status reads PENDING for ever, "
    "even once it has run"
)


def task_modules(package: str = __name__) -> list[str]:
    """The dotted names of every module in ``package``, for Celery to import.

    Celery's ``autodiscover_tasks`` imports one ``tasks`` module per package, not
    each module of a package, hence this walk over the package's folder.
    """
    path = importlib.import_module(package).__path__
    return [f"{package}.{module.name}" for module in pkgutil.iter_modules(path)]
