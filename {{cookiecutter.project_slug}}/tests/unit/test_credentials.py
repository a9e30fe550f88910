"""User names and passwords reach the broker and result store as their clients parse them."""

from __future__ import annotations

from celery import Celery
from celery.backends.redis import RedisBackend
from kombu import Connection
from pydantic import SecretStr

from {{ cookiecutter.package_name }}.celery_app import (
    celery_config,
)
from {{ cookiecutter.package_name }}.config import (
    Settings,
)
from {{ cookiecutter.package_name }}.config.settings import (
    BrokerSettings,
    ResultSettings,
)
from {{ cookiecutter.package_name }}.resources import (
    results_redis,
)

SECRET = "p@ss/w:rd"  # noqa: S105  # a test value, with characters to quote


def with_acl_users(settings: Settings) -> Settings:
    """Redis broker and results, each with its own ACL user and password."""
    return settings.model_copy(
        update={
            "broker": BrokerSettings(
                url="redis://queue:6379/0", username="worker", password=SecretStr(SECRET)
            ),
            "results": ResultSettings(
                url="redis://cache:6379/1", username="app", password=SecretStr(SECRET)
            ),
        }
    )


def test_results_url_carries_the_acl_user(local_settings: Settings) -> None:
    config = celery_config(with_acl_users(local_settings))
    assert config["result_backend"] == "redis://app:p%40ss%2Fw%3Ard@cache:6379/1"
    backend = RedisBackend(app=Celery(set_as_current=False), url=config["result_backend"])
    parsed = backend.connparams  # type: ignore[attr-defined]  # not in the stubs
    assert {k: parsed[k] for k in ("username", "password", "host", "db")} == {
        "username": "app",
        "password": SECRET,
        "host": "cache",
        "db": 1,
    }


def test_broker_url_carries_the_acl_user(local_settings: Settings) -> None:
    connection = Connection(celery_config(with_acl_users(local_settings))["broker_url"])
    assert (connection.userid, connection.password, connection.hostname) == (
        "worker",
        SECRET,
        "queue",
    )


def test_the_results_client_logs_in_as_the_acl_user(local_settings: Settings) -> None:
    client = results_redis(with_acl_users(local_settings))
    options = client.connection_pool.connection_kwargs
    assert (options["username"], options["password"], options["host"]) == ("app", SECRET, "cache")
    client.close()
