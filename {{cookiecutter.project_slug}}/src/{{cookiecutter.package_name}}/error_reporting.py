"""Optional error reports to Sentry: a task that fails, {% if cookiecutter.include_api %}a request that raises, {% endif %}with no task data.

Off until ``sentry.dsn`` is set; ``sentry_sdk`` is imported only then. Task arguments
and results may hold personal data, so nothing of them leaves: no local variables in
stack frames (a task's payload is one), no request bodies, and ``before_send`` drops
the arguments the Celery integration would attach to an event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import __version__
from .config import Settings

if TYPE_CHECKING:
    from sentry_sdk.types import Event, Hint

# Where sentry-sdk's Celery integration puts a task's arguments (with data_collection's
# queues off it writes a placeholder there; other options send the values).
CELERY_EXTRA = "celery-job"
TASK_DATA_KEYS = ("args", "kwargs")


def start(settings: Settings, transport: Any = None) -> bool:
    """Report errors of this process to Sentry when a DSN is set; whether it did.

    ``transport`` replaces the HTTP transport (tests capture envelopes with it).
    """
    if settings.sentry.dsn is None:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
{%- if cookiecutter.include_api %}
    from sentry_sdk.integrations.fastapi import FastApiIntegration
    from sentry_sdk.integrations.starlette import StarletteIntegration
{%- endif %}

    sentry_sdk.init(
        dsn=settings.sentry.dsn.get_secret_value(),
        environment=settings.sentry.environment or settings.profile.value,
        release=__version__,
        # What the SDK may collect: no user data, no request bodies, no task arguments,
        # no local variables of stack frames (a task's frame holds its payload).
        data_collection={
            "user_info": False,
            "http_bodies": [],
            "queues": False,
            "stack_frame_variables": False,
        },
        # Only the integrations named here: no import-time hunt through installed packages.
        auto_enabling_integrations=False,
        integrations=[
            # Sentry's tracing is off: no sentry-trace/baggage headers on every message
            # (OpenTelemetry carries the trace context, see tracing.py).
            CeleryIntegration(propagate_traces=False),
{%- if cookiecutter.include_api %}
            StarletteIntegration(),
            FastApiIntegration(),
{%- endif %}
        ],
        before_send=without_task_data,
        transport=transport,
    )
    _use_wrapped_tracer()
    return True


def _use_wrapped_tracer() -> None:
    """Make the worker's consumer build task tracers with sentry-sdk's wrapper.

    The Celery integration replaces ``celery.app.trace.build_tracer``; a prefork pool
    process looks it up there, but the consumer, which builds the tracers of a threads
    or solo pool, imported the function before (observability.py imports its module),
    so without this their failing tasks would not be reported.
    """
    from celery.app import trace
    from celery.worker.consumer import consumer

    vars(consumer)["build_tracer"] = trace.build_tracer  # the stubs leave this name out


def without_task_data(event: Event, _hint: Hint) -> Event:
    """The event without task arguments or request bodies, whatever the SDK's options."""
    job = event.get("extra", {}).get(CELERY_EXTRA)
    if isinstance(job, dict):
        for key in TASK_DATA_KEYS:
            job.pop(key, None)
    request = event.get("request")
    if request is not None:
        request.pop("data", None)
    return event
