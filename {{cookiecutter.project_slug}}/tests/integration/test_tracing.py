"""Tracing across processes on the real broker: the {% if cookiecutter.include_api %}request's{% else %}publisher's{% endif %} span and the worker's run
span are one trace, carried in the message headers; a worker with tracing off sends nothing.

The test process records its spans with the SDK's in-memory exporter. The worker is
another process: it exports over OTLP/HTTP, as in production, to a receiver on
loopback that this module runs and decodes with opentelemetry-proto.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from {{ cookiecutter.package_name }} import tracing
{%- if cookiecutter.include_api %}
from {{ cookiecutter.package_name }}.api import (
    create_api,
)
{%- endif %}
from {{ cookiecutter.package_name }}.celery_app import (
    CPU_QUEUE,
    DEFAULT_QUEUE,
    ProjectCelery,
)
from {{ cookiecutter.package_name }}.config.settings import (
    TracingSettings,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    process_data,
)

from .conftest import delete_queues
from .harness import WorkerProcess, worker_process

pytestmark = pytest.mark.integration

RESULT_TIMEOUT = 20
# The worker's exporter sends every 5 s by default; the receiver should not wait that long.
EXPORT_DELAY_MS = "100"
EXPORT_TIMEOUT = 15


@dataclass(frozen=True)
class ReceivedSpan:
    """What the tests compare of a span the worker exported."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    service: str


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP traces endpoint on loopback that keeps the spans it is sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ReceiveSpans)
        self.spans: list[ReceivedSpan] = []
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        """The URL to give ``tracing.endpoint``."""
        return f"http://127.0.0.1:{self.server_address[1]}/v1/traces"

    def named(self, name: str) -> list[ReceivedSpan]:
        """The spans received so far with this name."""
        with self.lock:
            return [span for span in self.spans if span.name == name]


class ReceiveSpans(BaseHTTPRequestHandler):
    """Decode an ExportTraceServiceRequest, keep its spans, answer as a collector does."""

    server: Receiver

    def do_POST(self) -> None:
        """Take one export."""
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest.FromString(body)
        received = []
        for resource_spans in export.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                received += [
                    ReceivedSpan(
                        span.name,
                        span.trace_id.hex(),
                        span.span_id.hex(),
                        span.parent_span_id.hex(),
                        attributes.get("service.name", ""),
                    )
                    for span in scope_spans.spans
                ]
        with self.server.lock:
            self.server.spans += received
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a test's output is its assertions."""


@contextmanager
def serve(receiver: Receiver) -> Iterator[Receiver]:
    """Run the receiver in a thread; stop it after."""
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.shutdown()
        receiver.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """Where the traced worker exports."""
    with serve(Receiver()) as running:
        yield running


@pytest.fixture(scope="module")
def quick_export() -> Iterator[None]:
    """Exporters here and in the workers started after this send their spans promptly."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OTEL_BSP_SCHEDULE_DELAY", EXPORT_DELAY_MS)
        yield


@pytest.fixture(scope="module")
def local_spans(quick_export: None) -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """Tracing in this process (the publisher{% if cookiecutter.include_api %} and the API{% endif %}), into memory."""
    exporter = InMemorySpanExporter()
    provider = tracing.start(TracingSettings(enabled=True), exporter=exporter)
    assert provider is not None
    yield provider, exporter
    tracing.stop()


@pytest.fixture(scope="module")
def traced_worker(
    broker_app: ProjectCelery,
    receiver: Receiver,
    quick_export: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WorkerProcess]:
    """A worker of the default queue with tracing on, exporting to ``receiver``."""
    settings = {
        "tracing.enabled": "true",
        "tracing.endpoint": receiver.endpoint,
        "tracing.service_name": "traced-worker",
    }
    folder = tmp_path_factory.mktemp("traced")
    delete_queues(broker_app)
    # A prefork pool: tracing starts in each pool process.
    with worker_process(broker_app, folder, queue=DEFAULT_QUEUE, settings=settings) as worker:
        yield worker
    delete_queues(broker_app)


def run_span(receiver: Receiver, trace_id: str) -> ReceivedSpan:
    """The worker's span of the process_data run in this trace, once exported."""
    name = f"run/{process_data.name}"
    deadline = time.monotonic() + EXPORT_TIMEOUT
    while time.monotonic() < deadline:
        found = [span for span in receiver.named(name) if span.trace_id == trace_id]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no {name} span in trace {trace_id}; received {receiver.spans}")


def finished(provider: TracerProvider, exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    """The spans this process ended, exported now."""
    assert provider.force_flush(5_000)
    return list(exporter.get_finished_spans())


def publish_span(spans: list[ReadableSpan], task_id: str) -> ReadableSpan:
    """This process's producer span of the publish of ``task_id``."""
    [span] = [
        span
        for span in spans
        if span.kind is SpanKind.PRODUCER
        and (span.attributes or {}).get("messaging.message.id") == task_id
    ]
    return span


def hex_ids(span: ReadableSpan) -> tuple[str, str]:
    """The span's trace id and span id as OTLP writes them."""
    context = span.get_span_context()
    assert context is not None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def test_the_publish_and_the_run_share_a_trace(
    broker_app: ProjectCelery,
    local_spans: tuple[TracerProvider, InMemorySpanExporter],
    traced_worker: WorkerProcess,
    receiver: Receiver,
) -> None:
    broker_app.set_current()
    result = process_data.delay(ProcessDataInput(value=3, label="traced"))
    assert result.get(timeout=RESULT_TIMEOUT).message == "Processed: 3 - traced"
    publish = publish_span(finished(*local_spans), result.id)
    assert publish.name == f"apply_async/{process_data.name}"
    trace_id, span_id = hex_ids(publish)
    run = run_span(receiver, trace_id)
    # The run's parent is the publish: the context came in the message's headers.
    assert run.parent_span_id == span_id
    assert run.service == "traced-worker"
{%- if cookiecutter.include_api %}


def test_the_request_and_the_run_share_a_trace(
    broker_app: ProjectCelery,
    local_spans: tuple[TracerProvider, InMemorySpanExporter],
    traced_worker: WorkerProcess,
    receiver: Receiver,
) -> None:
    from fastapi.testclient import TestClient

    settings = broker_app.settings.model_copy(update={"tracing": TracingSettings(enabled=True)})
    client = TestClient(create_api(settings, broker_app))
    accepted = client.post("/tasks/process_data", json={"value": 4, "label": "over http"})
    assert accepted.status_code == 202
    task_id = accepted.json()["task_id"]
    assert broker_app.AsyncResult(task_id).get(timeout=RESULT_TIMEOUT)
    spans = finished(*local_spans)
    [request] = [
        span
        for span in spans
        if span.kind is SpanKind.SERVER and span.name == "POST /tasks/process_data"
    ]
    publish = publish_span(spans, task_id)
    trace_id, request_id = hex_ids(request)
    assert hex_ids(publish)[0] == trace_id
    assert publish.parent is not None
    assert f"{publish.parent.span_id:016x}" == request_id
    assert run_span(receiver, trace_id).parent_span_id == hex_ids(publish)[1]
{%- endif %}


def test_a_worker_with_tracing_off_exports_nothing(
    broker_app: ProjectCelery,
    local_spans: tuple[TracerProvider, InMemorySpanExporter],
    tmp_path: Path,
) -> None:
    # Its own queue: the traced worker, if running, consumes only the default queue.
    with serve(Receiver()) as quiet:
        # Off is the default: the endpoint is set, so spans would have somewhere to go.
        settings = {"tracing.endpoint": quiet.endpoint}
        with worker_process(broker_app, tmp_path, queue=CPU_QUEUE, settings=settings):
            broker_app.set_current()
            payload = ProcessDataInput(value=5, label="off")
            result = process_data.apply_async((payload,), queue=CPU_QUEUE)
            assert result.get(timeout=RESULT_TIMEOUT).message == "Processed: 5 - off"
            # The message carried a trace context (this process traces); the worker ignored it.
            publish_span(finished(*local_spans), result.id)
            time.sleep(10 * int(EXPORT_DELAY_MS) / 1000)  # ten export intervals
        assert quiet.spans == []
