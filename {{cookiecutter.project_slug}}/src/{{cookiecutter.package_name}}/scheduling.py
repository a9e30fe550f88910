"""Refuse delayed publishes that Redis would deliver twice.

A task published with a countdown or ETA goes to a worker at once and waits there,
unacknowledged, until it is due; with acks-late it stays unacknowledged while it runs.
Redis has no real acknowledgement: it hands a message out again once it has been
unacknowledged for ``broker.visibility_timeout`` seconds. A delay plus the task's hard
time limit at or beyond that timeout therefore runs the task twice (or more).

``ProjectCelery.check_publish`` calls ``check_publish`` here before anything is sent;
every publish goes through it: ``delay``, ``apply_async``, signatures and canvases, retries,
``send_task``. Celery's ``before_task_publish`` signal cannot do this: Celery logs an
exception raised by a receiver and publishes anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from celery import Celery
from celery.canvas import Signature


class DelayTooLongError(ValueError):
    """A countdown or ETA Redis would outlive: the task would run more than once."""


def check_publish(
    app: Celery, name: str, options: Mapping[str, Any], timeout: float, default_limit: float
) -> None:
    """DelayTooLongError if this publish, or a step it carries, would be redelivered.

    ``options`` are ``send_task``'s arguments; ``default_limit`` is the hard time limit
    of a task this process does not know. The steps of a chain, a chord's body and
    ``link`` callbacks are published later, by a worker, so they are checked now too,
    where the caller can still hear about it.
    """
    for task_name, step in [(name, options), *carried_steps(options)]:
        delay = delay_of(step, app.now)
        if delay is None:
            continue
        limit = time_limit_of(app, task_name, step, default_limit)
        if delay + limit >= timeout:
            raise DelayTooLongError(refusal(task_name, delay, limit, timeout))


def refusal(name: str, delay: float, limit: float, timeout: float) -> str:
    """The one-line error: the numbers, why they clash, and the ways out."""
    short = name.rsplit(".", 1)[-1]
    return (
        f"{short}: a delay of {round(delay, 1):g}s is too long on Redis: the message waits "
        f"unacknowledged in a worker for the delay plus the task's run (time_limit "
        f"{limit:g}s), and Redis delivers it again after broker.visibility_timeout "
        f"({timeout:g}s), so it would run twice; keep the delay under "
        f"{max(timeout - limit, 0):g}s, raise broker.visibility_timeout, or run the task "
        "from a periodic schedule with beat (see README, Scheduling traps)"
    )


def delay_of(options: Mapping[str, Any], now: Callable[[], datetime]) -> float | None:
    """Seconds until the message is due, from its countdown or ETA; None if neither.

    ``now`` is asked only for an ETA: Celery's clock takes about 8 µs, and nearly every
    publish has no delay at all.
    """
    countdown, eta = options.get("countdown"), options.get("eta")
    if countdown:
        return float(countdown)
    if not eta:
        return None
    if isinstance(eta, str):
        eta = datetime.fromisoformat(eta)
    if eta.tzinfo is None:  # Celery reads a naive ETA in the app's timezone: UTC here
        eta = eta.replace(tzinfo=UTC)
    return float((eta - now()).total_seconds())


def time_limit_of(
    app: Celery, name: str, options: Mapping[str, Any], default_limit: float
) -> float:
    """The hard limit the run will have: the call's, else the task's, else the default."""
    given = options.get("time_limit")
    if isinstance(given, int | float):
        return float(given)
    task = app.tasks.get(name)
    if task is not None and task.time_limit:
        return float(task.time_limit)
    return default_limit


def carried_steps(options: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(task name, options)`` of every signature a message carries, however nested."""
    carried: list[Any] = [*(options.get("chain") or ())]
    for key in ("chord", "link", "link_error"):
        carried += _as_list(options.get(key))
    # Canvases keep steps in their arguments too: a chain's ``tasks``, a chord's
    # ``header`` and ``body``; Celery's chord_unlock task gets the body as an argument.
    kwargs = options.get("kwargs") or {}
    for key in ("tasks", "header", "body"):
        carried += _as_list(kwargs.get(key))
    arguments = [*(options.get("args") or ()), *kwargs.values()]
    carried += [value for value in arguments if isinstance(value, Signature)]
    for signature in carried:
        if isinstance(signature, Mapping) and "task" in signature:
            step = {**(signature.get("options") or {}), "kwargs": signature.get("kwargs")}
            yield signature["task"], step
            yield from carried_steps(step)


def _as_list(value: Any) -> list[Any]:
    """A list of the signatures an option holds: one, several, or none."""
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]
