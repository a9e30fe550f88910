"""The Celery app carries the production lessons in its configuration."""

from __future__ import annotations

import json
import os
import ssl
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import pytest
from celery import Celery, Task
from celery._state import get_current_app
from kombu.transport import redis
from pydantic import SecretStr

from {{ cookiecutter.package_name }}.celery_app import (
    CPU_QUEUE,
    DEAD_LETTER_QUEUE,
    PACKAGE,
    DeclareDeadLetterQueue,
    ProjectCelery,
    celery_config,
    create_app,
)
from {{ cookiecutter.package_name }}.config import (
    ConfigError,
    Settings,
)
from {{ cookiecutter.package_name }}.config.settings import (
    BrokerSettings,
    ResultSettings,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    process_data,
)
from {{ cookiecutter.package_name }}.tasks.media import (
    render_thumbnail,
)

from ..conftest import RegisterTasks


def add_task(app: Celery, name: str, **options: Any) -> Task[Any, Any]:
    """A task on this app only (``shared=False``: not added to every later app)."""
    # cast: the stubs have no overload for task options passed as **options.
    return cast("Task[Any, Any]", cast(Any, app.task)(name=name, shared=False, **options)(noop))


def noop() -> None:
    """A task body for tests of task options."""


def test_wire_format_is_json_only(local_settings: Settings) -> None:
    config = celery_config(local_settings)
    assert config["accept_content"] == ["json"]
    assert config["result_accept_content"] == ["json"]
    assert {config["task_serializer"], config["result_serializer"]} == {"json"}


def test_delivery_and_protection_settings(local_settings: Settings) -> None:
    config = celery_config(local_settings)
    assert config["task_acks_late"] is True
    assert config["task_reject_on_worker_lost"] is True
    assert config["worker_prefetch_multiplier"] == 1
    assert config["worker_cancel_long_running_tasks_on_connection_loss"] is True
    assert (config["task_acks_on_failure"], config["task_acks_on_timeout"]) == (False, True)
    assert config["broker_connection_retry_on_startup"] is True
    assert config["worker_max_memory_per_child"] == local_settings.worker.max_memory_per_child


def test_only_long_tasks_record_that_they_started(local_app: ProjectCelery) -> None:
    # A STARTED write per task costs short tasks throughput; a long one opts in.
    assert local_app.conf.task_track_started is False
    assert local_app.tasks[render_thumbnail.name].track_started is True
    assert local_app.tasks[process_data.name].track_started is False


def test_local_profile_uses_folders_under_data_dir(local_settings: Settings) -> None:
    config = celery_config(local_settings)
    assert config["broker_transport_options"]["data_folder_in"].startswith(
        str(local_settings.data_dir)
    )
    results = str((local_settings.data_dir / "results").resolve())
    assert config["result_backend"].endswith(f"+file://{results}")
    assert not local_settings.data_dir.exists()  # building the configuration writes nothing
    create_app(local_settings)
    for folder in ("broker", "broker-processed", "broker-control", "results"):
        assert (local_settings.data_dir / folder).is_dir()


def test_the_embedded_broker_polls_often_enough_to_show_a_rate_limit(
    local_app: ProjectCelery,
) -> None:
    # The worker takes at most about one message per poll of an empty folder: kombu's
    # default of 1 s kept the local profile near 2 tasks/s, below every rate_limit sample.
    with local_app.connection_for_read() as connection:
        transport: Any = connection.transport  # the stubs know the base class only
        assert transport.polling_interval <= 0.05


def test_the_embedded_broker_writes_only_under_data_dir(local_app: ProjectCelery) -> None:
    process_data.delay(ProcessDataInput(value=1, label="a"))  # binds the task queues
    local_app.control.broadcast("ping", reply=False)  # the workers' fanout exchange
    data_dir = local_app.settings.data_dir
    written = [path for path in Path.cwd().rglob("*") if path.is_file()]
    assert written
    assert [path for path in written if not path.is_relative_to(data_dir)] == []


def test_credentials_are_inserted_and_quoted(local_settings: Settings) -> None:
    settings = local_settings.model_copy(
        update={
            "broker": BrokerSettings(
                url="amqp://rabbit:5672//", username="app", password=SecretStr("p@ss:w")
            ),
            "results": ResultSettings(url="redis://cache:6379/1", password=SecretStr("r")),
        }
    )
    config = celery_config(settings)
    assert config["broker_url"] == "amqp://app:p%40ss%3Aw@rabbit:5672//"
    assert config["result_backend"] == "redis://:r@cache:6379/1"
    assert config["broker_transport_options"] == {"confirm_publish": True}
    unconfirmed = settings.model_copy(
        update={"broker": settings.broker.model_copy(update={"publisher_confirms": False})}
    )
    assert celery_config(unconfirmed)["broker_transport_options"] == {"confirm_publish": False}


def test_cpu_tasks_are_routed_to_the_cpu_queue(local_app: ProjectCelery) -> None:
    route = local_app.amqp.router.route({}, render_thumbnail.name)
    assert route["queue"].name == CPU_QUEUE
    assert route["queue"].routing_key == CPU_QUEUE


def test_each_queue_has_its_own_binding(local_app: ProjectCelery) -> None:
    queues = local_app.amqp.queues.values()
    assert sorted(queue.routing_key for queue in queues) == ["cpu", "default"]


def test_on_rabbitmq_work_queues_dead_letter_and_workers_declare_the_queue(
    local_settings: Settings,
) -> None:
    settings = local_settings.model_copy(update={"broker": BrokerSettings(url="amqp://mq//")})
    app = create_app(settings)
    for queue in app.amqp.queues.values():
        assert queue.queue_arguments == {
            "x-dead-letter-exchange": DEAD_LETTER_QUEUE,
            "x-dead-letter-routing-key": DEAD_LETTER_QUEUE,
        }
    assert DeclareDeadLetterQueue in app.steps["consumer"]


def test_elsewhere_queues_have_no_dead_letter_arguments(local_app: ProjectCelery) -> None:
    assert [queue.queue_arguments for queue in local_app.amqp.queues.values()] == [None, None]
    assert DeclareDeadLetterQueue not in local_app.steps["consumer"]


def test_cpu_tasks_get_the_cpu_time_limits(local_settings: Settings) -> None:
    app = create_app(local_settings)
    limits = local_settings.tasks
    thumbnail, data = app.tasks[render_thumbnail.name], app.tasks[process_data.name]
    assert (thumbnail.soft_time_limit, thumbnail.time_limit) == (20, limits.cpu.time_limit)
    assert (data.soft_time_limit, data.time_limit) == (60, limits.time_limit)


def test_limits_a_task_sets_win_over_its_queue_limits(local_app: ProjectCelery) -> None:
    media = f"{PACKAGE}.tasks.media"
    both = add_task(local_app, f"{media}.both", queue="cpu", soft_time_limit=200, time_limit=300)
    hard = add_task(local_app, f"{media}.hard", queue="cpu", time_limit=25)
    other = add_task(local_app, f"{PACKAGE}.tasks.data.other", soft_time_limit=5)
    assert (both.soft_time_limit, both.time_limit) == (200, 300)
    assert (hard.soft_time_limit, hard.time_limit) == (20, 25)
    assert (other.soft_time_limit, other.time_limit) == (5, 90)


def test_a_task_soft_limit_must_be_below_its_hard_limit(
    local_settings: Settings, at_start_up: RegisterTasks
) -> None:
    name = f"{PACKAGE}.tasks.media.slow"
    at_start_up(lambda app: add_task(app, name, queue="cpu", soft_time_limit=45))
    with pytest.raises(ConfigError, match=rf"{name}: soft_time_limit=45s.*time_limit=30"):
        create_app(local_settings)


def test_visibility_timeout_must_exceed_a_task_own_limit(
    local_settings: Settings, at_start_up: RegisterTasks
) -> None:
    name = f"{PACKAGE}.tasks.media.slow"
    at_start_up(lambda app: add_task(app, name, soft_time_limit=200, time_limit=300))
    settings = local_settings.model_copy(
        update={"broker": BrokerSettings(url="redis://cache:6379/0", visibility_timeout=250)}
    )
    with pytest.raises(ConfigError, match=rf": 250\.0s must exceed.*\(300s, {name}\)"):
        create_app(settings)


def test_visibility_timeout_must_exceed_hard_limits(local_settings: Settings) -> None:
    settings = local_settings.model_copy(
        update={"broker": BrokerSettings(url="redis://cache:6379/0", visibility_timeout=20)}
    )
    with pytest.raises(ConfigError, match=r": 20\.0s must exceed.*tasks\.time_limit"):
        create_app(settings)


def test_redis_sweeps_for_unacked_tasks_well_within_the_visibility_timeout(
    local_settings: Settings,
) -> None:
    settings = local_settings.model_copy(
        update={"broker": BrokerSettings(url="redis://cache:6379/0", visibility_timeout=400)}
    )
    options = create_app(settings).conf.broker_transport_options
    # kombu ignores an option name it does not know, so a typo would go unnoticed.
    assert set(options) <= set(redis.Channel.from_transport_options)
    assert options["visibility_timeout"] == 400
    # A dead worker's task comes back within the timeout plus one sweep period; the
    # sweep lock of a worker cut off mid-sweep expires after a few periods.
    sweep_period = options["unacked_restore_interval"] * options["unacked_restore_throttle"]
    assert sweep_period <= 400 / 4
    assert sweep_period < options["unacked_mutex_expire"] <= 5 * sweep_period


def test_tls_urls_get_certificate_options(local_settings: Settings) -> None:
    settings = local_settings.model_copy(
        update={
            "broker": BrokerSettings(url="amqps://rabbit:5671//", tls_ca_file=Path("/ca.pem")),
            "results": ResultSettings(url="rediss://cache:6380/1", tls_cert_file=Path("/c.pem")),
        }
    )
    config = celery_config(settings)
    assert config["broker_use_ssl"] == {"ca_certs": "/ca.pem", "cert_reqs": ssl.CERT_REQUIRED}
    assert config["redis_backend_use_ssl"] == {
        "ssl_certfile": "/c.pem",
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
    }


def test_plaintext_urls_get_no_tls_options(local_settings: Settings) -> None:
    assert "broker_use_ssl" not in celery_config(local_settings)


def test_the_app_is_current_in_other_threads_too(local_app: ProjectCelery) -> None:
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(get_current_app).result() is local_app


def test_the_embedded_broker_shows_a_message_only_once_it_is_whole(
    local_app: ProjectCelery, monkeypatch: pytest.MonkeyPatch
) -> None:
    # kombu's own transport writes the queue file in place: a polling worker could take
    # it empty and die on the JSON error (celery/kombu#1551).
    queue = local_app.settings.data_dir / "broker"
    _ = local_app.backend  # its start-up check writes a file: before the watch
    renamed: list[tuple[list[str], dict[str, Any]]] = []
    replace = os.replace

    def watch(source: str | Path, target: Path) -> None:
        waiting = sorted(path.name for path in queue.glob("*.msg"))
        renamed.append((waiting, json.loads(Path(source).read_text())))
        replace(source, target)

    monkeypatch.setattr(os, "replace", watch)
    result = process_data.delay(ProcessDataInput(value=1, label="whole"))
    ((waiting, message),) = renamed
    assert waiting == []  # nothing a worker could take before the rename
    assert message["headers"]["id"] == result.id
    assert [path.name for path in queue.glob("*.msg")] != []


def test_the_local_result_store_shows_a_result_only_once_it_is_whole(
    local_app: ProjectCelery, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Celery's file backend truncates, then writes: a caller polling at that moment read
    # a half-written result and failed to decode it.
    stored: list[tuple[bool, dict[str, Any]]] = []
    replace = os.replace
    _ = local_app.backend  # its start-up check writes a file: before the watch

    def watch(source: str | Path, target: Path) -> None:
        stored.append((Path(target).exists(), json.loads(Path(source).read_text())))
        replace(source, target)

    monkeypatch.setattr(os, "replace", watch)
    local_app.backend.store_result("a-task-id", {"message": "whole"}, "SUCCESS")
    ((existed, meta),) = stored
    assert not existed  # the result file did not exist while it was written
    assert meta["result"] == {"message": "whole"}
    assert local_app.AsyncResult("a-task-id").result == {"message": "whole"}
