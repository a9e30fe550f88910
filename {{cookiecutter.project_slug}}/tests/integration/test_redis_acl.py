"""A Redis ACL user, created for the test on the test profile's Redis, really logs in."""

from __future__ import annotations

import uuid

import pytest
from celery import Celery
from celery.backends.redis import RedisBackend

from {{ cookiecutter.package_name }}.celery_app import (
    ProjectCelery,
    celery_config,
)
from {{ cookiecutter.package_name }}.config import (
    load_settings,
)
from {{ cookiecutter.package_name }}.config.settings import (
    ENV_PREFIX,
)
from {{ cookiecutter.package_name }}.resources import (
    results_redis,
)

pytestmark = pytest.mark.integration


def test_redis_acl_users_log_in(
    broker_app: ProjectCelery,  # the services are up (or the test says why not)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user, secret = f"test-acl-{uuid.uuid4().hex[:12]}", "s3cret/with:odd@chars"
    with results_redis(broker_app.settings) as admin:
        admin.acl_setuser(
            user,
            enabled=True,
            passwords=[f"+{secret}"],
            categories=["+@all"],
            keys=["*"],
            channels=["*"],
        )
        try:
            monkeypatch.setenv(f"{ENV_PREFIX}RESULTS__USERNAME", user)
            monkeypatch.setenv(f"{ENV_PREFIX}RESULTS__PASSWORD", secret)
{%- if cookiecutter.broker == "redis" %}
            monkeypatch.setenv(f"{ENV_PREFIX}BROKER__USERNAME", user)
            monkeypatch.setenv(f"{ENV_PREFIX}BROKER__PASSWORD", secret)
{%- endif %}
            settings = load_settings("test", env_file=None)
            # A bare Celery app: create_app would become the session's current app.
            app = Celery(set_as_current=False)
            app.conf.update(celery_config(settings))
            backend = app.backend
            assert isinstance(backend, RedisBackend)
            assert backend.client.acl_whoami() == user
            backend.client.connection_pool.disconnect()
            with results_redis(settings) as client:
                assert client.acl_whoami() == user
{%- if cookiecutter.broker == "redis" %}
            with app.connection_for_write() as connection:
                channel = connection.default_channel
                assert channel.client.acl_whoami() == user  # type: ignore[attr-defined]
{%- endif %}
        finally:
            admin.acl_deluser(user)
