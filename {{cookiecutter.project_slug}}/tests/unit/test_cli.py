"""The command line, on the embedded broker: nothing here needs a server."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path
from typing import Any

import pytest
import watchfiles
from typer.testing import CliRunner

import {{ cookiecutter.package_name }}
from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
    create_app,
)
from {{ cookiecutter.package_name }}.cli import (
    app,
    start_worker,
)
from {{ cookiecutter.package_name }}.config import (
    load_settings,
)
from {{ cookiecutter.package_name }}.config.settings import (
    ENV_PREFIX,
)

runner = CliRunner()
BROKER_FOLDER = Path(".{{ cookiecutter.project_slug }}/broker")


def invoke(*args: str) -> Any:
    """Run the CLI in-process."""
    return runner.invoke(app, list(args))


def queued_messages() -> list[Path]:
    """Messages waiting in the embedded broker."""
    return sorted(BROKER_FOLDER.glob("*.msg")) if BROKER_FOLDER.exists() else []


def test_submit_enqueues_valid_input() -> None:
    result = invoke("submit", "process_data", "--json", '{"value": 1, "label": "a"}')
    assert result.exit_code == 0, result.output
    assert len(result.stdout.strip()) == 36  # the task id, alone on stdout
    assert len(queued_messages()) == 1
    # Only data_dir is written: the working directory of an image is read-only.
    assert [path.name for path in Path.cwd().iterdir()] == [BROKER_FOLDER.parts[0]]


def test_submit_rejects_invalid_input_and_enqueues_nothing() -> None:
    result = invoke("submit", "process_data", "--json", '{"value": "x", "label": "a"}')
    assert result.exit_code == 2
    assert "invalid input for process_data" in result.output
    assert "value: Input should be a valid integer" in result.output
    assert queued_messages() == []


def test_submit_rejects_malformed_json() -> None:
    result = invoke("submit", "process_data", "--json", "{not json")
    assert result.exit_code == 2
    assert "Invalid JSON" in result.output
    assert queued_messages() == []


def test_submit_refuses_arguments_over_the_payload_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}TASKS__MAX_PAYLOAD_BYTES", "100")
    label = "x" * 100
    result = invoke("submit", "process_data", "--json", json.dumps({"value": 1, "label": label}))
    size = len(json.dumps([[{"value": 1, "label": label}], {}]))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"error: process_data: arguments are {size} bytes as JSON, over "
        "tasks.max_payload_bytes (100); pass a reference (a URL, an id) instead of the data, "
        "or raise the setting (nothing was queued)\n"
    )
    assert queued_messages() == []


def test_submit_unknown_task_lists_known_ones() -> None:
    result = invoke("submit", "nope", "--json", "{}")
    assert result.exit_code == 2
    assert "unknown task 'nope'" in result.output
    assert "process_data" in result.output


def test_bad_configuration_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}WORKER__CONCURRENCY", "zero")
    result = invoke("config")
    assert result.exit_code == 2
    assert "worker.concurrency" in result.output
    assert "Traceback" not in result.output


def test_status_of_unknown_task_is_pending() -> None:
    result = invoke("status", "0b5c6a1e-0000-4000-8000-000000000000")
    assert result.exit_code == 0
    assert json.loads(result.output)["state"] == "PENDING"


def test_status_explains_what_pending_can_mean() -> None:
    result = invoke("status", "0b5c6a1e-0000-4000-8000-000000000000")
    assert "stores no result (ignore_result)" in json.loads(result.output)["note"]


@pytest.mark.parametrize("reason", ["expired", "revoked"])
def test_status_of_a_revoked_task_says_why(reason: str) -> None:
    task_id = "0b5c6a1e-0000-4000-8000-00000000000e"
    # What a worker stores for an expired message (or one revoked by id).
    create_app(load_settings("local")).backend.mark_as_revoked(task_id, reason)
    report = json.loads(invoke("status", task_id).output)
    assert report == {
        "task_id": task_id,
        "state": "REVOKED",
        "error": f"TaskRevokedError: {reason}",
    }


AUDIT_EVENT = '{"event_id": "evt-00001", "actor": "ann", "action": "login"}'


def test_a_task_that_stores_no_result_cannot_be_waited_for() -> None:
    result = invoke("submit", "record_audit_event", "--json", AUDIT_EVENT, "--wait")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: record_audit_event stores no result (ignore_result), "
        "so --wait cannot wait for it; nothing was queued (submit it without --wait)\n"
    )
    assert queued_messages() == []


def test_submitting_a_task_that_stores_no_result_says_so() -> None:
    result = invoke("submit", "record_audit_event", "--json", AUDIT_EVENT)
    assert result.exit_code == 0
    assert len(result.stdout.strip()) == 36
    assert "stores no result; status will say PENDING" in result.stderr
    assert len(queued_messages()) == 1


def test_status_rejects_an_id_that_is_not_a_uuid() -> None:
    result = invoke("status", "not-a-uuid")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == "error: task id 'not-a-uuid' is not a UUID (submit prints one)\n"


def test_status_reports_results_and_failures() -> None:
    done, broken = "0b5c6a1e-0000-4000-8000-000000000001", "0b5c6a1e-0000-4000-8000-000000000002"
    backend = create_app(load_settings("local")).backend
    backend.store_result(done, {"message": "ok"}, "SUCCESS")
    backend.mark_as_failure(broken, ValueError("boom"))
    ok = json.loads(invoke("status", done).stdout)
    failed = json.loads(invoke("status", broken, "--profile", "local").stdout)
    assert ok == {"task_id": done, "state": "SUCCESS", "result": {"message": "ok"}}
    assert failed["state"] == "FAILURE"
    assert failed["error"] == "ValueError: boom"


def test_config_masks_secrets_and_names_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}BROKER__PASSWORD", "hunter2")
    text = invoke("config")
    as_json = invoke("config", "--json")
    assert text.exit_code == as_json.exit_code == 0
    assert "hunter2" not in text.output + as_json.output
    rows = json.loads(as_json.output)
    assert rows["broker.password"] == {"value": "**********", "source": "environment"}
    assert rows["broker.url"]["source"] == "config/local.toml"
    assert "broker.password" in text.output


def test_tasks_lists_inputs() -> None:
    result = invoke("tasks")
    assert result.exit_code == 0
    assert "process_data" in result.output
    assert '"label"' in result.output


@pytest.mark.usefixtures("same_short_name")
def test_two_tasks_with_one_short_name_are_one_clear_error() -> None:
    result = invoke("tasks")
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert "extra.one.echo and extra.two.echo" in result.output


def test_worker_starts_with_profile_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[list[str]] = []
    monkeypatch.setattr(ProjectCelery, "worker_main", lambda self, argv: started.append(argv))
    result = invoke("worker", "--concurrency", "3", "--", "--hostname=w1@%h")
    assert result.exit_code == 0, result.output
    assert started == [
        [
            "worker",
            "--loglevel=INFO",
            "--queues=default,cpu",
            "--concurrency=3",
            "--pool=prefork",
            "--without-mingle",
            "--without-gossip",
            "--hostname=w1@%h",
        ]
    ]


def test_a_queue_worker_runs_with_that_queue_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[list[str]] = []
    monkeypatch.setattr(ProjectCelery, "worker_main", lambda self, argv: started.append(argv))
    monkeypatch.setenv(f"{ENV_PREFIX}WORKER__CPU__CONCURRENCY", "5")
    monkeypatch.setenv(f"{ENV_PREFIX}WORKER__CPU__MAX_MEMORY_PER_CHILD", "200000")
    monkeypatch.setenv(f"{ENV_PREFIX}WORKER__POOL", "threads")
    for queue in ("cpu", "default"):
        result = invoke("worker", "--queue", queue, "--", "--hostname=w1@%h")
        assert result.exit_code == 0, result.output
    assert started == [
        [
            "worker",
            "--loglevel=INFO",
            "--queues=cpu",
            "--hostname=cpu@%h",
            "--concurrency=5",
            "--pool=prefork",
            "--max-tasks-per-child=1000",
            "--max-memory-per-child=200000",
            "--without-mingle",
            "--without-gossip",
            "--hostname=w1@%h",
        ],
        [
            "worker",
            "--loglevel=INFO",
            "--queues=default",
            "--hostname=default@%h",
            "--concurrency=2",
            "--pool=threads",
            "--max-tasks-per-child=10000",
            "--max-memory-per-child=512000",
            "--without-mingle",
            "--without-gossip",
            "--hostname=w1@%h",
        ],
    ]


def test_concurrency_given_on_the_command_line_beats_the_queue_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[list[str]] = []
    monkeypatch.setattr(ProjectCelery, "worker_main", lambda self, argv: started.append(argv))
    result = invoke("worker", "--queue", "cpu", "--concurrency", "7")
    assert result.exit_code == 0, result.output
    ((*_, last, _mingle, _gossip),) = started
    assert last == "--concurrency=7"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--queue", "gpu"], "error: queue 'gpu' is not a queue of this project; use one of"),
        (["--queue", "cpu", "--queues", "default"], "error: give --queue (one queue, its own"),
    ],
)
def test_a_bad_queue_choice_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, options: list[str], message: str
) -> None:
    started: list[list[str]] = []
    monkeypatch.setattr(ProjectCelery, "worker_main", lambda self, argv: started.append(argv))
    result = invoke("worker", *options)
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1
    assert started == []


def test_worker_reload_restarts_a_child_worker_on_package_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    watched: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(watchfiles, "run_process", lambda *a, **kw: watched.append((a, kw)))
    started: list[list[str]] = []
    monkeypatch.setattr(ProjectCelery, "worker_main", lambda self, argv: started.append(argv))
    result = invoke("worker", "--reload", "--profile", "local", "--", "--hostname=w1@%h")
    assert result.exit_code == 0, result.output
    ((paths, options),) = watched
    assert paths == (Path({{ cookiecutter.package_name }}.__file__).parent,)
    assert options["target"] is start_worker
    assert started == []  # only the child runs the worker
    options["target"](*options["args"])
    assert started == [
        [
            "worker",
            "--loglevel=INFO",
            "--queues=default,cpu",
            "--concurrency=2",
            "--pool=prefork",
            "--without-mingle",
            "--without-gossip",
            "--hostname=w1@%h",
        ]
    ]


def test_worker_reload_without_watchfiles_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "watchfiles", None)  # import fails as if not installed
    result = invoke("worker", "--reload")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --reload needs watchfiles, a development dependency: run uv sync\n"
    )


def test_an_unsafe_app_configuration_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}BROKER__URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv(f"{ENV_PREFIX}BROKER__VISIBILITY_TIMEOUT", "10")
    result = invoke("worker")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"error: broker.visibility_timeout ({ENV_PREFIX}BROKER__VISIBILITY_TIMEOUT, "
        "from environment): 10.0s must exceed the longest hard time limit"
    )


def test_check_reports_the_embedded_services() -> None:
    result = invoke("check")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"broker": "ok", "results": "ok"}


def test_check_fails_naming_what_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}RESULTS__URL", "redis://127.0.0.1:1/1")
    result = invoke("check", "--timeout", "1")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"broker": "ok", "results": "down: ConnectionError"}


def test_beat_on_redis_results_uses_redbeat_and_no_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: list[list[str]] = []
    monkeypatch.setattr(ProjectCelery, "start", lambda self, argv: started.append(argv))
    monkeypatch.setenv(f"{ENV_PREFIX}DATA_DIR", str(tmp_path / "state"))
    assert invoke("beat", "--profile", "test").exit_code == 0
    assert started == [["beat", "--loglevel=WARNING"]]  # the scheduler comes from the config
    assert not (tmp_path / "state").exists()


def test_beat_keeps_its_schedule_under_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: list[list[str]] = []
    monkeypatch.setattr(ProjectCelery, "start", lambda self, argv: started.append(argv))
    monkeypatch.setenv(f"{ENV_PREFIX}DATA_DIR", str(tmp_path / "state"))
    assert invoke("beat").exit_code == 0
    schedule = tmp_path / "state" / "celerybeat-schedule"
    assert started == [["beat", "--loglevel=INFO", f"--schedule={schedule}"]]
    assert schedule.parent.is_dir()  # beat can create its file there


def test_python_dash_m_runs_the_command_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["{{ cookiecutter.package_name }}", "--help"])
    with pytest.raises(SystemExit) as exited:
        runpy.run_module("{{ cookiecutter.package_name }}", run_name="__main__")
    assert exited.value.code == 0
    assert "worker" in capsys.readouterr().out
