"""The HTTP front door on the embedded broker: no server needed."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from celery.app.task import Context
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import values as prometheus_values
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from typer.testing import CliRunner
from uvicorn.importer import import_from_string as import_string

from {{ cookiecutter.package_name }} import cli
from {{ cookiecutter.package_name }}.api import (
    create_api,
)
from {{ cookiecutter.package_name }}.api.app import (
    serve,
)
from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
    create_app,
)
from {{ cookiecutter.package_name }}.config import (
    ConfigError,
    Profile,
    Settings,
    load_settings,
)
from {{ cookiecutter.package_name }}.config.settings import (
    ENV_PREFIX,
    BrokerSettings,
    MetricsSettings,
    ResultSettings,
)
from {{ cookiecutter.package_name }}.metrics import (
    MULTIPROCESS_VARIABLE,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    process_data,
)
from {{ cookiecutter.package_name }}.tasks.typed import (
    typed_tasks,
)

VALID = {"value": 1, "label": "a"}


def client_for(app: ProjectCelery, **api_changes: object) -> TestClient:
    """A test client for the API over this Celery app, with API settings changed."""
    settings = app.settings.model_copy(
        update={"api": app.settings.api.model_copy(update=api_changes)}
    )
    return TestClient(create_api(settings, app))


@pytest.fixture
def client(local_app: ProjectCelery) -> TestClient:
    """The API with default settings."""
    return client_for(local_app)


def queued(app: ProjectCelery) -> list[Path]:
    """Messages waiting in the embedded broker."""
    return sorted((app.settings.data_dir / "broker").glob("*.msg"))


def test_healthz_needs_no_io(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_checks_broker_and_results(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"broker": "ok", "results": "ok"}}


def test_readyz_names_what_is_down(local_app: ProjectCelery) -> None:
    (local_app.settings.data_dir / "results").rmdir()
    response = client_for(local_app).get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"broker": "ok", "results": "down: FileNotFoundError"}


def test_submit_queues_the_task(local_app: ProjectCelery, client: TestClient) -> None:
    response = client.post("/tasks/process_data", json=VALID)
    assert response.status_code == 202
    body = response.json()
    assert response.headers["location"] == body["status_url"]
    assert body["status_url"].endswith(f"/tasks/{body['task_id']}")
    assert body["note"] is None
    assert len(queued(local_app)) == 1


def test_submitting_a_task_that_stores_no_result_says_status_will_stay_pending(
    local_app: ProjectCelery, client: TestClient
) -> None:
    event = {"event_id": "evt-00001", "actor": "ann", "action": "login"}
    response = client.post("/tasks/record_audit_event", json=event)
    assert response.status_code == 202
    assert "stores no result (ignore_result)" in response.json()["note"]
    assert "PENDING for ever" in response.json()["note"]
    assert len(queued(local_app)) == 1


@pytest.mark.parametrize("reason", ["expired", "revoked"])
def test_status_of_a_revoked_task_says_why(local_app: ProjectCelery, reason: str) -> None:
    task_id = "6f1c2a9e-0000-4000-8000-00000000000e"
    local_app.backend.mark_as_revoked(task_id, reason)
    assert client_for(local_app).get(f"/tasks/{task_id}").json() == {
        "task_id": task_id,
        "state": "REVOKED",
        "result": None,
        "error": {"type": "TaskRevokedError", "message": reason, "traceback": None},
        "note": None,
    }


def test_invalid_body_is_422_with_field_errors_and_queues_nothing(
    local_app: ProjectCelery, client: TestClient
) -> None:
    response = client.post("/tasks/process_data", json={"value": "x", "label": "a"})
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["body", "value"]]
    assert queued(local_app) == []


def test_unknown_task_is_404(client: TestClient) -> None:
    response = client.post("/tasks/nope", json=VALID)
    assert response.status_code == 404
    assert response.json() == {"detail": "unknown task 'nope'"}


@pytest.mark.parametrize("extended", [False, True])
def test_status_of_a_success_is_the_result(local_settings: Settings, extended: bool) -> None:
    results = local_settings.results.model_copy(update={"extended": extended})
    local_app = create_app(local_settings.model_copy(update={"results": results}))
    client = client_for(local_app)
    task_id = client.post("/tasks/process_data", json=VALID).json()["task_id"]
    # With results.extended the store keeps the task name, and the API validates the
    # result with that task's output model; without, the stored JSON comes back as is.
    request = Context(task=process_data.name, args=(), kwargs={}, delivery_info={})
    local_app.backend.store_result(
        task_id, {"message": "Processed: 1 - a"}, "SUCCESS", request=request
    )
    assert (local_app.AsyncResult(task_id).name is not None) is extended
    assert client.get(f"/tasks/{task_id}").json() == {
        "task_id": task_id,
        "state": "SUCCESS",
        "result": {"message": "Processed: 1 - a"},
        "error": None,
        "note": None,
    }


def test_status_of_a_failure_hides_the_traceback_in_production(
    local_app: ProjectCelery,
) -> None:
    task_id = "6f1c2a9e-0000-4000-8000-000000000001"
    try:
        raise ValueError("boom")
    except ValueError as error:
        local_app.backend.mark_as_failure(task_id, error, traceback="Traceback: secret")
    local = client_for(local_app).get(f"/tasks/{task_id}").json()
    production_settings = local_app.settings.model_copy(update={"profile": Profile.PRODUCTION})
    production = TestClient(create_api(production_settings, local_app)).get(f"/tasks/{task_id}")
    assert local["error"] == {
        "type": "ValueError",
        "message": "boom",
        "traceback": "Traceback: secret",
    }
    assert production.json()["error"] == {
        "type": "ValueError",
        "message": "boom",
        "traceback": None,
    }


def test_status_of_an_unknown_id_is_pending(client: TestClient) -> None:
    response = client.get("/tasks/6f1c2a9e-0000-4000-8000-00000000ffff")
    assert response.json()["state"] == "PENDING"
    assert "stores no result (ignore_result)" in response.json()["note"]


def test_status_of_an_invalid_id_is_422(client: TestClient) -> None:
    assert client.get("/tasks/not-a-task-id").status_code == 422


def test_api_key_is_required_when_configured(local_app: ProjectCelery) -> None:
    client = client_for(local_app, api_key=SecretStr("s3cret"))
    assert client.post("/tasks/process_data", json=VALID).status_code == 401
    wrong = client.post("/tasks/process_data", json=VALID, headers={"X-API-Key": "guess"})
    right = client.post("/tasks/process_data", json=VALID, headers={"X-API-Key": "s3cret"})
    assert wrong.status_code == 401
    assert right.status_code == 202
    assert client.get("/healthz").status_code == 200


def test_body_size_is_limited(local_app: ProjectCelery) -> None:
    client = client_for(local_app, max_body_bytes=1024)
    big = {"value": 1, "label": "x" * 2000}
    assert client.post("/tasks/process_data", json=big).status_code == 413
    assert queued(local_app) == []


def test_arguments_over_the_payload_limit_get_413_within_the_body_limit(
    local_settings: Settings,
) -> None:
    # The body is well within api.max_body_bytes; the task's arguments are not within
    # tasks.max_payload_bytes, which every publish checks.
    tasks = local_settings.tasks.model_copy(update={"max_payload_bytes": 100})
    app = create_app(local_settings.model_copy(update={"tasks": tasks}))
    body = {"value": 1, "label": "x" * 100}
    response = client_for(app).post("/tasks/process_data", json=body)
    size = len(json.dumps([[body], {}]))
    assert response.status_code == 413
    assert response.json() == {
        "detail": f"process_data: arguments are {size} bytes as JSON, over "
        "tasks.max_payload_bytes (100); pass a reference (a URL, an id) instead of the data, "
        "or raise the setting"
    }
    assert queued(app) == []


def test_streamed_body_is_limited_too(local_app: ProjectCelery) -> None:
    client = client_for(local_app, max_body_bytes=1024)
    chunks = iter([b'{"value": 1, "label": "', b"x" * 2000, b'"}'])
    response = client.post(
        "/tasks/process_data", content=chunks, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_cors_is_off_by_default_and_configurable(local_app: ProjectCelery) -> None:
    origin = {"Origin": "https://shop.example"}
    assert (
        "access-control-allow-origin"
        not in client_for(local_app).get("/healthz", headers=origin).headers
    )
    allowed = client_for(local_app, cors_origins=("https://shop.example",))
    assert allowed.get("/healthz", headers=origin).headers["access-control-allow-origin"] == (
        "https://shop.example"
    )


def test_openapi_has_one_operation_per_typed_task(
    local_app: ProjectCelery, client: TestClient
) -> None:
    schema = client.get("/openapi.json").json()
    tasks = typed_tasks(local_app)
    submit_paths = {path for path, item in schema["paths"].items() if "post" in item}
    assert submit_paths == {f"/tasks/{name}" for name in tasks}
    operation = schema["paths"]["/tasks/process_data"]["post"]
    body_ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body_ref.endswith("/ProcessDataInput")
    assert operation["x-result-schema"]["title"] == "ProcessDataOutput"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        pytest.param(b"", "application/json", id="empty"),
        pytest.param(b"{", "application/json", id="truncated"),
        pytest.param(b"\xff\xfe", "application/json", id="not-utf8"),
        pytest.param(b'{"value": 1, "label": "a"}', "text/plain", id="wrong-type"),
        pytest.param(b"[" * 5000 + b"]" * 5000, "application/json", id="deep"),
        pytest.param(
            json.dumps({"value": 10**30, "label": "a"}).encode(), "application/json", id="huge"
        ),
        pytest.param(
            b'{"value": ' + b"9" * 5000 + b', "label": "a"}',
            "application/json",
            id="too-many-digits",
        ),
        pytest.param(
            '{"value": 1, "label": "\u00e9\u2603\U0001f600"}'.encode(),
            "application/json",
            id="unicode",
        ),
        pytest.param(b'{"value": 1, "label": "a", "extra": 1}', "application/json", id="extra"),
    ],
)
def test_odd_bodies_never_cause_a_server_error(
    client: TestClient, content: bytes, content_type: str
) -> None:
    response = client.post(
        "/tasks/process_data", content=content, headers={"content-type": content_type}
    )
    assert response.status_code < 500, response.text


def test_production_refuses_to_start_without_an_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}BROKER__PASSWORD", "broker-secret")
    monkeypatch.setenv(f"{ENV_PREFIX}RESULTS__PASSWORD", "results-secret")
    with pytest.raises(ConfigError, match=r"api\.api_key \(.*API__API_KEY, default\): missing"):
        load_settings("production", env_file=None)


def test_production_refuses_an_empty_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # `API__API_KEY=` uncommented from .env.example: no key, so production will not start.
    monkeypatch.setenv(f"{ENV_PREFIX}BROKER__PASSWORD", "broker-secret")
    monkeypatch.setenv(f"{ENV_PREFIX}RESULTS__PASSWORD", "results-secret")
    monkeypatch.setenv(f"{ENV_PREFIX}API__API_KEY", "")
    with pytest.raises(ConfigError) as caught:
        load_settings("production", env_file=None)
    assert (
        f"api.api_key ({ENV_PREFIX}API__API_KEY, from environment): missing; production needs one"
        in str(caught.value).splitlines()
    )


def test_an_empty_api_key_locks_the_routes_rather_than_opening_them(
    local_app: ProjectCelery,
) -> None:
    # Settings turn "" into None; a key set without validation still guards the routes.
    client = client_for(local_app, api_key=SecretStr(""))
    assert client.post("/tasks/process_data", json=VALID).status_code == 401
    empty = client.post("/tasks/process_data", json=VALID, headers={"X-API-Key": ""})
    assert empty.status_code == 401
    assert queued(local_app) == []


def test_two_tasks_with_one_short_name_stop_the_api_starting(
    local_settings: Settings, same_short_name: tuple[str, str]
) -> None:
    with pytest.raises(ConfigError, match=r"extra\.one\.echo and extra\.two\.echo"):
        create_api(local_settings)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that never answers a connect, like a firewalled host: its queue is full."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        waiting: list[socket.socket] = []
        try:
            while len(waiting) < 16:
                waiting.append(socket.socket())
                waiting[-1].settimeout(0.2)
                waiting[-1].connect(("127.0.0.1", port))
        except TimeoutError:
            pass  # the queue is full: the next connect gets no answer
        yield port
        for client in waiting:
            client.close()


def test_an_unreachable_broker_is_503_at_once(local_settings: Settings) -> None:
    # Nothing listens on port 1: the connection is refused.
    down = BrokerSettings(url="redis://127.0.0.1:1/0")
    client = TestClient(create_api(local_settings.model_copy(update={"broker": down})))
    started = time.monotonic()
    response = client.post("/tasks/process_data", json=VALID)
    submitted = time.monotonic()
    ready = client.get("/readyz")
    checked = time.monotonic()
    # Celery's own retry policy held the answer for broker.connection_timeout (5 s),
    # and a retried readiness check slept 2 s. Margins for a busy machine.
    assert submitted - started < 2
    assert checked - submitted < 1.5
    assert response.status_code == 503
    assert response.json() == {"detail": "broker or result backend unavailable"}
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"broker": "down: OperationalError", "results": "ok"}


def test_a_broker_that_does_not_answer_is_503_within_the_timeouts(
    local_settings: Settings, silent_port: int
) -> None:
    silent = BrokerSettings(url=f"redis://127.0.0.1:{silent_port}/0", connection_timeout=1)
    settings = local_settings.model_copy(
        update={
            "broker": silent,
            "api": local_settings.api.model_copy(update={"readiness_timeout": 0.3}),
        }
    )
    client = TestClient(create_api(settings))
    started = time.monotonic()
    response = client.post("/tasks/process_data", json=VALID)
    submitted = time.monotonic()
    ready = client.get("/readyz")
    checked = time.monotonic()
    # One attempt and api.publish_retries (1) reconnect of 1 s each; one 0.3 s check.
    # Without a socket connect timeout redis-py waited for the OS: minutes; Celery's own
    # retry policy took over 10 s, a retried check over 2 s. Margins for a busy machine.
    assert submitted - started < 5
    assert checked - submitted < 1.5
    assert response.status_code == 503
    assert ready.json()["checks"]["broker"].startswith("down: ")


def test_an_unreachable_result_store_makes_readyz_503(local_settings: Settings) -> None:
    down = ResultSettings(url="redis://127.0.0.1:1/1")
    unreachable = local_settings.model_copy(update={"results": down})
    ready = TestClient(create_api(unreachable)).get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"broker": "ok", "results": "down: ConnectionError"}


def test_invalid_content_length_is_400(client: TestClient) -> None:
    response = client.post(
        "/tasks/process_data",
        content=b"{}",
        headers={"content-type": "application/json", "content-length": "abc"},
    )
    assert response.status_code == 400


def test_serve_runs_uvicorn_with_the_profile(
    local_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, dict[str, object]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **options: calls.append((target, options)))
    serve(local_settings, host="127.0.0.1", port=8123)
    ((target, options),) = calls
    assert options["factory"] is True
    assert (options["host"], options["port"], options["workers"]) == ("127.0.0.1", 8123, 1)
    assert os.environ["APP_ENV"] == "local"
    assert isinstance(import_string(target)(), FastAPI)


def test_cli_api_command_passes_flags_over_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[tuple[str, int]] = []
    monkeypatch.setattr(
        "{{ cookiecutter.package_name }}.api.app.serve",
        lambda settings, host, port: served.append((host, port)),
    )
    result = CliRunner().invoke(cli.app, ["api", "--port", "9000"])
    assert result.exit_code == 0, result.output
    assert served == [("127.0.0.1", 9000)]


def test_the_openapi_schema_shows_each_documented_example(
    local_app: ProjectCelery, client: TestClient
) -> None:
    # The examples of docs/tasks.md come from the input models, so the API shows them too.
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for task in typed_tasks(local_app).values():
        model = task.input_model
        assert schemas[model.__name__]["examples"] == model.model_json_schema()["examples"]


def metrics_client(app: ProjectCelery, **api_changes: object) -> TestClient:
    """A test client for the API with metrics on."""
    settings = app.settings.model_copy(
        update={
            "metrics": MetricsSettings(enabled=True),
            "api": app.settings.api.model_copy(update=api_changes),
        }
    )
    return TestClient(create_api(settings, app))


def test_metrics_count_requests_by_route_template_and_status_class(
    local_app: ProjectCelery,
) -> None:
    client = metrics_client(local_app, api_key=SecretStr("s3cret"))
    key = {"X-API-Key": "s3cret"}
    for task_id in ("6f1c2a9e-0000-4000-8000-00000000000a", "6f1c2a9e-0000-4000-8000-00000000000b"):
        assert client.get(f"/tasks/{task_id}", headers=key).status_code == 200
    bad = {"value": "x", "label": "a"}
    assert client.post("/tasks/process_data", json=bad, headers=key).status_code == 422
    response = client.get("/metrics")  # a scraper sends no API key
    assert response.status_code == 200
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    status = {"handler": "/tasks/{task_id}", "method": "GET"}
    assert samples[("http_requests_total", frozenset({**status, "status": "2xx"}.items()))] == 2
    assert samples[("http_request_duration_seconds_count", frozenset(status.items()))] == 2
    submit = {"handler": "/tasks/process_data", "method": "POST", "status": "4xx"}
    assert samples[("http_requests_total", frozenset(submit.items()))] == 1
    assert not any("6f1c2a9e" in dict(labels).get("handler", "") for _, labels in samples)


def test_no_metrics_route_while_metrics_are_off(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 404


def test_several_api_workers_share_their_counts_through_a_folder(
    local_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MULTIPROCESS_VARIABLE, "")
    monkeypatch.setattr(prometheus_values, "ValueClass", prometheus_values.ValueClass)
    monkeypatch.setattr(uvicorn, "run", lambda target, **options: None)
    settings = local_settings.model_copy(
        update={
            "metrics": MetricsSettings(enabled=True),
            "api": local_settings.api.model_copy(update={"workers": 2}),
        }
    )
    stale = settings.data_dir / "metrics" / "api-8123" / "counter_1.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"")
    serve(settings, host="127.0.0.1", port=8123)
    assert os.environ[MULTIPROCESS_VARIABLE] == str(stale.parent)
    assert list(stale.parent.iterdir()) == []  # emptied: counts start at zero
