"""The next release of the typed tasks, for the rolling-deploy test; a worker loads it
with --include, after the project's task modules.

Importing it replaces each evolvable typed task of the worker's app by the next
release's task of the same name: its input model evolved as ``DEPLOY_TEST_EVOLUTION``
says (see ``evolution``), its output model unchanged. The new body records that it
ran and returns a valid output, without the real tasks' side effects. Every delivery
is recorded as well, before the input is validated, so the test can tell a message
rejected once from one rejected twice. The test process never imports this module.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from celery import Task, current_task
from celery._state import get_current_app
from celery.signals import task_prerun

from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
    current_resources,
)
from {{ cookiecutter.package_name }}.tasks.typed import (
    TypedTask,
    typed_task,
    typed_tasks,
)

from .evolution import DELIVERED, EVOLUTION_VARIABLE, RAN, evolvable, evolve, examples


def record(task_id: str, stage: str) -> None:
    """Record one ``stage`` of a message; a repeat is recorded again (counted by the test)."""
    entry = {"key": task_id, "stage": stage}
    current_resources().ledger.record_once(f"{task_id}:{stage}:{uuid.uuid4()}", entry)


def release(app: ProjectCelery, task: TypedTask[Any, Any], evolution: str) -> None:
    """Register the next release of ``task`` in its place, under the same name."""
    input_model = evolve(task.input_model, evolution)
    output_model = task.output_model
    output = output_model.model_validate(examples(output_model.model_json_schema())[0])

    def run(payload: Any) -> Any:
        record(str(current_task.request.id), RAN)
        return output

    # typed_task reads the models from the annotations, as from a function written out.
    run.__annotations__ = {"payload": input_model, "return": output_model}
    run.__name__ = run.__qualname__ = task.name.rpartition(".")[2]
    # Celery keeps the first task registered under a name; the release replaces it.
    app.tasks.unregister(task.name)
    typed_task(name=task.name)(run)


def install(app: ProjectCelery, evolution: str) -> None:
    """Replace every evolvable typed task; record each delivery of their messages."""
    released = {task.name: task for task in typed_tasks(app).values() if evolvable(task)}
    for task in released.values():
        release(app, task, evolution)

    def delivered(task_id: str, task: Task[Any, Any], **_: Any) -> None:
        if task.name in released:
            record(task_id, DELIVERED)

    task_prerun.connect(delivered, weak=False)


def _app() -> ProjectCelery:
    app = get_current_app()  # the worker's app: create_app made it current
    if not isinstance(app, ProjectCelery):
        raise RuntimeError("deploy_tasks is for a worker of this project (create_app)")
    return app


install(_app(), os.environ[EVOLUTION_VARIABLE])
