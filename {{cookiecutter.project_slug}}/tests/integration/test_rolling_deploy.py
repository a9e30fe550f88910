"""A rolling deploy: messages of the committed contracts meet the next release's worker.

Old producers fill the queues while no worker runs; then a worker of the next release
(``deploy_tasks``: the same task names, evolved input models) drains them. The
contract gate's verdict on that release must be what happens to the messages: a
compatible release runs every one, a breaking one rejects every one, naming the field.
Either way each message has exactly one outcome: none lost, none run twice.
"""

from __future__ import annotations

import signal
from collections import Counter
from typing import Any

import pytest
from pydantic import StrictInt

from {{ cookiecutter.package_name }}.celery_app import (
    CPU_QUEUE,
    DEFAULT_QUEUE,
    ProjectCelery,
)
from {{ cookiecutter.package_name }}.contracts import (
    Schema,
    compare,
    current_contracts,
    load,
)
from {{ cookiecutter.package_name }}.tasks.typed import (
    TaskModel,
    short_name,
    typed_tasks,
)

from .conftest import RunWorker, declare_queues
from .evolution import (
    DELIVERED,
    EVOLUTION_VARIABLE,
    NEW_FIELDS,
    RAN,
    evolvable,
    evolve,
    examples,
)
from .harness import (
    PROJECT,
{%- if cookiecutter.broker == "rabbitmq" %}
    dead_lettered,
{%- endif %}
    final_states,
    queued,
)

pytestmark = pytest.mark.integration
DEPLOY_TASKS = "tests.integration.deploy_tasks"
TIMEOUT = 30


def next_release(app: ProjectCelery, evolution: str) -> dict[str, Schema]:
    """The contracts of the code as ``deploy_tasks`` changes it, by short name."""
    contracts = current_contracts(app)
    for name, task in typed_tasks(app).items():
        if evolvable(task):
            schema = evolve(task.input_model, evolution).model_json_schema()
            contracts[name] = {**contracts[name], "input": schema}
    return contracts


def old_messages(old: dict[str, Schema], released: set[str]) -> list[tuple[str, Any]]:
    """(task name, payload) pairs valid for the committed input schema of each task."""
    return [
        (contract["name"], payload)
        for contract in old.values()
        if contract["name"] in released
        for payload in examples(contract["input"])
    ]


def waiting(app: ProjectCelery) -> int:
    """Messages in the work queues."""
    return sum(queued(app, queue) for queue in (DEFAULT_QUEUE, CPU_QUEUE))


def evidence(app: ProjectCelery, task_ids: list[str]) -> Counter[tuple[str, str]]:
    """How often each message was delivered and ran, from the worker's ledger entries."""
    wanted = set(task_ids)
    entries = app.provider.get().ledger.entries()
    return Counter((e["key"], e["stage"]) for e in entries if e.get("key") in wanted)


@pytest.mark.parametrize("evolution", sorted(NEW_FIELDS))
def test_evolving_adds_a_field_no_real_model_has(evolution: str) -> None:
    # The fields a project adds first (the README's process_data_v2 takes a priority)
    # must not clash with the one the next release adds.
    class Ticket(TaskModel):
        priority: StrictInt
        tenant: str

    field, _ = NEW_FIELDS[evolution]
    evolved = evolve(Ticket, evolution)
    assert set(evolved.model_fields) == {"priority", "tenant", field}


@pytest.mark.parametrize("evolution", sorted(NEW_FIELDS))
def test_messages_queued_by_the_old_code_meet_the_gates_verdict(
    broker_app: ProjectCelery,
    run_worker: RunWorker,
    monkeypatch: pytest.MonkeyPatch,
    evolution: str,
) -> None:
    old = load(PROJECT / "contracts")
    changes = compare(old, next_release(broker_app, evolution))
    breaking = [change for change in changes if change.breaking]
    field, _ = NEW_FIELDS[evolution]
    released = {task.name for task in typed_tasks(broker_app).values() if evolvable(task)}
    assert released, "no typed task with input fields to evolve"
    assert {(c.task, c.field) for c in changes} == {(name, f"input.{field}") for name in released}
    assert bool(breaking) == (evolution == "breaking")

    messages = old_messages(old, released)
    declare_queues(broker_app)
    sent = [broker_app.send_task(name, args=[payload]) for name, payload in messages]
    ids = [result.id for result in sent]
    assert waiting(broker_app) == len(ids)

    monkeypatch.setenv(EVOLUTION_VARIABLE, evolution)
    with run_worker(include=[DEPLOY_TASKS]) as worker:
        states = final_states(broker_app, ids, TIMEOUT)
        seen = evidence(broker_app, ids)
        # A warm shutdown returns any message not yet acknowledged to its queue.
        worker.signal(signal.SIGTERM)
        assert worker.wait(timeout=TIMEOUT) == 0
    assert waiting(broker_app) == 0, "messages left to run again"

    # The gate's verdict is what happened: every message ran, or every one was refused.
    expected = "FAILURE" if breaking else "SUCCESS"
    assert Counter(states.values()) == {expected: len(ids)}
    assert all(seen[task_id, DELIVERED] == 1 for task_id in ids), seen
    runs = [seen[task_id, RAN] for task_id in ids]
    assert runs == [0 if breaking else 1] * len(ids)
    tasks = {task.name: task for task in typed_tasks(broker_app).values()}
    for (name, _), result in zip(messages, sent, strict=True):
        if breaking:
            error = result.result
            assert type(error).__name__ == "TaskInputError", error
            # The new field alone: every old message was valid for the old model.
            expected_error = f"invalid input for {short_name(tasks[name])}: {field}: Field required"
            assert str(error) == expected_error
        else:  # a result callers on the old code can read
            tasks[name].output_model.model_validate(result.result)
{%- if cookiecutter.broker == "rabbitmq" %}
    # Refused messages wait in the dead-letter queue, each once, for a person to replay.
    assert sorted(map(str, dead_lettered(broker_app))) == sorted(ids if breaking else [])
{%- endif %}
