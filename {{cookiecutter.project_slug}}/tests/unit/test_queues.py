"""Tasks are discovered and name their own queue; each queue's worker has its settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from celery import Celery, Task
from pydantic import BaseModel

from {{ cookiecutter.package_name }} import tasks
from {{ cookiecutter.package_name }}.celery_app import (
    PACKAGE,
    ProjectCelery,
    create_app,
)
from {{ cookiecutter.package_name }}.config import (
    ConfigError,
    Settings,
    load_settings,
)
from {{ cookiecutter.package_name }}.config.settings import (
    ENV_PREFIX,
    QueueWorkerSettings,
    TaskSettings,
    TimeLimits,
    WorkerSettings,
)
from {{ cookiecutter.package_name }}.contracts import (
    current_contracts,
)
from {{ cookiecutter.package_name }}.queues import (
    DEFAULT_QUEUE,
    QUEUES,
    queue_settings,
    worker_argv,
)
from {{ cookiecutter.package_name }}.tasks import (
    task_modules,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    process_data,
)
from {{ cookiecutter.package_name }}.tasks.media import (
    render_thumbnail,
)

from ..conftest import RegisterTasks

TASKS_FOLDER = Path(tasks.__file__).parent
PROJECT = Path(__file__).resolve().parents[2]


def add_task(app: Celery, name: str, **options: Any) -> Task[Any, Any]:
    """A task on this app only (``shared=False``: not added to every later app)."""
    # cast: the stubs have no overload for task options passed as **options.
    return cast("Task[Any, Any]", cast(Any, app.task)(name=name, shared=False, **options)(noop))


def noop() -> None:
    """A task body for the tests."""


def test_discovery_imports_a_new_module_without_edits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "discovered"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "old.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert task_modules("discovered") == ["discovered.old"]
    (package / "images.py").write_text("")  # a new domain module, listed nowhere
    assert task_modules("discovered") == ["discovered.images", "discovered.old"]


def test_the_app_registers_the_tasks_of_every_module_in_the_tasks_package(
    local_app: ProjectCelery,
) -> None:
    files = {path.stem for path in TASKS_FOLDER.glob("*.py")} - {"__init__"}
    modules = set(task_modules(f"{PACKAGE}.tasks"))
    assert modules == {f"{PACKAGE}.tasks.{name}" for name in files}
    with_tasks = {name.rpartition(".")[0] for name in local_app.tasks}
    assert modules - {f"{PACKAGE}.tasks.typed"} <= with_tasks


def test_a_task_states_its_queue_and_everything_follows_it(
    local_settings: Settings, at_start_up: RegisterTasks
) -> None:
    # A task in a module that is not media's: its queue comes from its decorator.
    name = f"{PACKAGE}.tasks.data.crunch"
    at_start_up(lambda app: add_task(app, name, queue="cpu"))
    app = create_app(local_settings)
    routes = {name: "cpu", render_thumbnail.name: "cpu", process_data.name: "default"}
    for task, queue in routes.items():
        # By name alone, as another producer publishes (the task object adds its queue).
        assert app.amqp.router.route({}, task)["queue"].name == queue
    crunch = app.tasks[name]
    cpu = local_settings.tasks.cpu
    assert (crunch.soft_time_limit, crunch.time_limit) == (cpu.soft_time_limit, cpu.time_limit)
    assert getattr(crunch, "time_limit_settings", None) == {
        "soft_time_limit": "tasks.cpu.soft_time_limit",
        "time_limit": "tasks.cpu.time_limit",
    }
    contracts = current_contracts(app)
    assert contracts["render_thumbnail"]["queue"] == "cpu"
    assert contracts["process_data"]["queue"] == "default"


def test_a_task_naming_an_unknown_queue_is_refused_at_start_up(
    local_settings: Settings, at_start_up: RegisterTasks
) -> None:
    name = f"{PACKAGE}.tasks.media.upscale"
    at_start_up(lambda app: add_task(app, name, queue="gpu"))
    with pytest.raises(ConfigError) as refused:
        create_app(local_settings)
    assert str(refused.value) == (
        f"{name}: queue 'gpu' is not a queue of this project; use one of default, cpu, "
        "or add it to QUEUES in queues.py with its settings"
    )


def test_every_queue_has_its_settings_and_a_worker_wherever_the_others_run(
    local_settings: Settings,
) -> None:
    # The README's checklist for adding a queue: each step missed is named here.
    worker_sections = sections(WorkerSettings, QueueWorkerSettings)
    limit_sections = sections(TaskSettings, TimeLimits)
    kustomization = (PROJECT / "deploy/kubernetes/base/kustomization.yaml").read_text()
    compose = (PROJECT / "compose.yaml").read_text()
    makefile = (PROJECT / "Makefile").read_text()
    missing = []
    for queue in QUEUES:
        if queue != DEFAULT_QUEUE and queue not in worker_sections:
            missing.append(f"{queue}: no worker.{queue} (a QueueWorkerSettings in WorkerSettings)")
        if queue != DEFAULT_QUEUE and queue not in limit_sections:
            missing.append(f"{queue}: no tasks.{queue} (a TimeLimits in TaskSettings)")
        manifest = f"deploy/kubernetes/base/worker-{queue}.yaml"
        if not (PROJECT / manifest).is_file():
            missing.append(f"{queue}: no {manifest} (copy worker-cpu.yaml)")
        elif f'args: ["worker", "--queue", "{queue}"]' not in (PROJECT / manifest).read_text():
            missing.append(f"{queue}: {manifest} does not run `worker --queue {queue}`")
        if f"  - worker-{queue}.yaml\n" not in kustomization:
            missing.append(f"{queue}: worker-{queue}.yaml is not in the base kustomization.yaml")
        if f'command: ["worker", "--queue", "{queue}"]' not in compose:
            missing.append(f"{queue}: no worker-{queue} service in compose.yaml")
        if f"\nworker-{queue}:" not in makefile:
            missing.append(f"{queue}: no worker-{queue} target in the Makefile")
    for section in sorted((worker_sections | limit_sections) - set(QUEUES)):
        missing.append(f"worker.{section} or tasks.{section}: {section!r} is not in QUEUES")
    assert not missing, "adding a queue (README, Scaling) missed:\n" + "\n".join(missing)
    assert [queue_settings(local_settings, queue).name for queue in QUEUES] == list(QUEUES)


def sections(model: type[BaseModel], section: type[BaseModel]) -> set[str]:
    """The fields of ``model`` that hold a ``section``: one per queue but the default."""
    return {
        name
        for name, field in model.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, section)
    }


def test_a_queue_worker_takes_its_queue_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "local")
    overrides = {
        "WORKER__CPU__CONCURRENCY": "4",
        "WORKER__CPU__POOL": "solo",
        "WORKER__CPU__MAX_TASKS_PER_CHILD": "50",
        "WORKER__CPU__MAX_MEMORY_PER_CHILD": "300000",
        "WORKER__CONCURRENCY": "8",
        "TASKS__CPU__TIME_LIMIT": "40",
    }
    for key, value in overrides.items():
        monkeypatch.setenv(f"{ENV_PREFIX}{key}", value)
    settings = load_settings(env_file=None)
    cpu = queue_settings(settings, "cpu")
    assert (cpu.limits.time_limit, cpu.limits_key) == (40, "tasks.cpu")
    assert cpu.worker_key == "worker.cpu"
    assert worker_argv(cpu) == [
        "--queues=cpu",
        "--hostname=cpu@%h",
        "--concurrency=4",
        "--pool=solo",
        "--max-tasks-per-child=50",
        "--max-memory-per-child=300000",
    ]
    default = queue_settings(settings, "default")
    assert (default.limits_key, default.worker_key) == ("tasks", "worker")
    assert worker_argv(default)[:4] == [
        "--queues=default",
        "--hostname=default@%h",
        "--concurrency=8",
        "--pool=prefork",
    ]
