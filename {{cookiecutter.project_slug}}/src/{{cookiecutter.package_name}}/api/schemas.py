"""Response bodies of the API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class TaskAccepted(BaseModel):
    """A task was queued; poll ``status_url`` for its outcome."""

    task_id: str
    status_url: str
    # Set for a task that stores no result: polling status_url would read PENDING for ever.
    note: str | None = None


class TaskError(BaseModel):
    """Why a task failed; the traceback only outside production."""

    type: str
    message: str
    traceback: str | None = None


class TaskStatus(BaseModel):
    """Where a task is, and its typed result once it has one."""

    task_id: str
    state: str
    result: dict[str, Any] | None = None
    error: TaskError | None = None
    # Set while PENDING: the store cannot tell queued from unknown or never stored.
    note: str | None = None


class Problem(BaseModel):
    """An error the API answers with."""

    detail: str


class Readiness(BaseModel):
    """Which dependencies answered."""

    status: str
    checks: dict[str, str]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "The body is not parseable JSON"},
    413: {
        "model": Problem,
        "description": (
            "The body is larger than api.max_body_bytes, or the task's arguments are "
            "larger than tasks.max_payload_bytes as JSON (nothing was queued)"
        ),
    },
    503: {"model": Problem, "description": "The broker does not answer"},
}
