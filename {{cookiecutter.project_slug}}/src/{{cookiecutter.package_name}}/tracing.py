"""Optional OpenTelemetry tracing: one trace from the HTTP request through the publish
to the task run.

Off by default (``tracing.enabled``). The OpenTelemetry packages are the ``tracing``
extra and are imported only once tracing is on, so a project that leaves it off pays
nothing for them. Celery's instrumentation puts the trace context in the message
headers (``traceparent``), so a task's run span joins the trace it was published in.

The SDK starts where spans are made: the API and ``submit`` start it at once (``start``);
a worker starts it where its tasks run, in each pool process (``worker_process_init``:
the exporter's background thread does not survive the fork) or, for the threads and solo
pools, in the worker process itself; beat starts it at ``beat_init``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from celery.signals import (
    beat_init,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_shutdown,
)

from .config import ConfigError, Settings, setting_problem
from .config.settings import TracingSettings

if TYPE_CHECKING:
{%- if cookiecutter.include_api %}
    from fastapi import FastAPI
{%- endif %}
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.sampling import Sampler

INSTALL = "uv sync --extra tracing"
# What tracing imports, checked at start-up so a missing extra fails there, in one line.
MODULES = (
    "opentelemetry.sdk.trace",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.instrumentation.celery",
    "opentelemetry.instrumentation.redis",
{%- if cookiecutter.include_api %}
    "opentelemetry.instrumentation.fastapi",
{%- endif %}
)
# Probes call these every few seconds: a trace each would bury the real ones.
UNTRACED_URLS = "healthz,readyz"

# This process's tracer provider, once started: OpenTelemetry's own provider is per
# process too (set once), and a pool process starts its own after the fork.
_provider: TracerProvider | None = None


def connect_signals(settings: Settings) -> None:
    """With tracing on, start it in each worker pool process and in beat; with it off,
    drop what an earlier app connected. The receivers carry these settings.

    ConfigError naming the install command when the ``tracing`` extra is missing.
    """
    traced = settings.tracing
    receivers = (
        (worker_init, "tracing.worker_init", partial(_on_worker_init, traced)),
        (worker_process_init, "tracing.process", partial(_on_start, traced)),
        (worker_process_shutdown, "tracing.process_stop", _on_stop),
        (worker_shutdown, "tracing.worker_stop", _on_stop),
        (beat_init, "tracing.beat", partial(_on_start, traced)),
    )
    for signal, uid, _receiver in receivers:
        signal.disconnect(dispatch_uid=uid)
    if not traced.enabled:
        return
    missing = [name for name in MODULES if not _installed(name)]
    if missing:
        message = (
            f"tracing needs the OpenTelemetry packages of the tracing extra ({missing[0]} "
            f"is missing); install them with `{INSTALL}` or turn tracing off"
        )
        raise ConfigError(setting_problem(settings, "tracing.enabled", message))
    for signal, uid, receiver in receivers:
        signal.connect(receiver, weak=False, dispatch_uid=uid)


def start(settings: TracingSettings, exporter: SpanExporter | None = None) -> TracerProvider | None:
    """Trace Celery and Redis in this process; None when tracing is off (idempotent).

    Spans go to ``exporter``, by default OTLP/HTTP to ``tracing.endpoint``. The standard
    ``OTEL_*`` variables still apply, e.g. ``OTEL_EXPORTER_OTLP_TRACES_HEADERS``.
    """
    global _provider
    if not settings.enabled:
        return None
    if _provider is not None:
        return _provider
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: settings.service_name}),
        sampler=sampler(settings.sample_ratio),
    )
    provider.add_span_processor(
        BatchSpanProcessor(exporter or OTLPSpanExporter(endpoint=settings.endpoint))
    )
    # The global provider, so code of the project can add spans with trace.get_tracer();
    # OpenTelemetry sets it once per process.
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    # no-untyped-call: its __init__ lacks an annotation (the rest of it is typed).
    CeleryInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    RedisInstrumentor().instrument(tracer_provider=provider)
    _provider = provider
    return provider


def stop() -> None:
    """Export the spans still buffered and stop tracing in this process.

    A pool process ends with ``os._exit``, which skips the SDK's own flush at exit.
    """
    global _provider
    if _provider is None:
        return
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    CeleryInstrumentor().uninstrument()  # type: ignore[no-untyped-call]
    RedisInstrumentor().uninstrument()
    _provider.shutdown()
    _provider = None
{% if cookiecutter.include_api %}

def instrument_api(api: FastAPI, settings: TracingSettings) -> None:
    """Give each HTTP request a server span, the parent of the publishes it makes."""
    provider = start(settings)
    if provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        api,
        tracer_provider=provider,
        excluded_urls=UNTRACED_URLS,
        # One span per request, not one more per ASGI message received and sent.
        exclude_spans=["receive", "send"],
    )
{% endif %}

def sampler(ratio: float) -> Sampler:
    """Keep ``ratio`` of new traces; a span with a parent follows its parent's decision.

    A client span with no parent is dropped: a Redis command made outside any request
    or task (the broker's housekeeping, beat's lock) would otherwise start a trace each.
    """
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace.sampling import (
        Decision,
        ParentBased,
        Sampler,
        SamplingResult,
        TraceIdRatioBased,
    )
    from opentelemetry.trace import Link, SpanKind
    from opentelemetry.trace.span import TraceState
    from opentelemetry.util.types import Attributes

    by_ratio = TraceIdRatioBased(ratio)

    class NewTraces(Sampler):
        """Root sampler: the ratio, but never a trace that starts with a client call."""

        def should_sample(
            self,
            parent_context: Context | None,
            trace_id: int,
            name: str,
            kind: SpanKind | None = None,
            attributes: Attributes = None,
            links: Sequence[Link] | None = None,
            trace_state: TraceState | None = None,
        ) -> SamplingResult:
            """Drop a parentless client span, else decide by the trace id."""
            if kind is SpanKind.CLIENT:
                return SamplingResult(Decision.DROP)
            return by_ratio.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )

        def get_description(self) -> str:
            """How the sampler shows in the SDK's debug output."""
            return f"NewTraces({by_ratio.get_description()})"

    return ParentBased(root=NewTraces())


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (its parents only)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def _on_worker_init(settings: TracingSettings, sender: Any, **_: Any) -> None:
    # Here, not at the top: only a worker needs the pool classes.
    from celery.concurrency import get_implementation
    from celery.concurrency.prefork import TaskPool as PreforkPool

    # A prefork worker runs no task itself: its pool processes start tracing.
    if get_implementation(sender.pool_cls) is not PreforkPool:
        start(settings)


def _on_start(settings: TracingSettings, **_: Any) -> None:
    start(settings)


def _on_stop(**_: Any) -> None:
    stop()
