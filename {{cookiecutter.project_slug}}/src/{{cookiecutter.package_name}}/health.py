{% if cookiecutter.include_api -%}
"""Whether the services the app depends on answer: used by the API's /readyz and by
the ``check`` command (the container healthcheck)."""
{%- else -%}
"""Whether the services the app depends on answer: used by the ``check`` command
(the container healthcheck)."""
{%- endif %}

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from kombu import Connection
from kombu.exceptions import OperationalError

from .celery_app import ProjectCelery
from .config import setting_problem
from .resources import results_redis


class BrokerUnavailableError(Exception):
    """The broker did not answer; the message is one line naming its URL and broker.url."""


def dependency_checks(app: ProjectCelery, timeout: float) -> dict[str, str]:
    """``{"broker": ..., "results": ...}``, each ``ok`` or ``down: <error type>``."""
    return {"broker": broker_status(app, timeout), "results": results_status(app, timeout)}


def broker_status(app: ProjectCelery, timeout: float) -> str:
    """``ok``, or ``down: <error type>`` when the broker does not answer in time."""
    try:
        with broker_connection(app, timeout):
            pass
    except Exception as error:  # any failure means down; its type says why
        return f"down: {type(error).__name__}"
    return "ok"


@contextmanager
def broker_connection(app: ProjectCelery, timeout: float) -> Iterator[Connection]:
    """An open broker connection, or the broker's error within about ``timeout`` seconds."""
    # Redis reads its timeouts from the transport options, AMQP from connect_timeout
    # (the socket timeout bounds each Redis answer too, not only connecting).
    options = (
        {"socket_connect_timeout": timeout, "socket_timeout": timeout}
        if app.settings.broker.is_redis
        else {}
    )
    with app.connection_for_read(connect_timeout=timeout, transport_options=options) as connection:
        # One attempt: kombu sleeps 2 s before a retry, and callers ask again anyway.
        connection.ensure_connection(max_retries=0)
        yield connection


@contextmanager
def answering_broker(app: ProjectCelery) -> Iterator[Connection]:
    """A broker connection for the block, or :class:`BrokerUnavailableError` naming the
    broker (password masked) and the setting to fix when it does not answer within
    ``broker.connection_timeout``."""
    settings = app.settings
    timeout = settings.broker.connection_timeout
    with app.connection_for_read() as unopened:  # its URL, password masked
        url = unopened.as_uri()
        # kombu raises OperationalError for a connection it could not open; these come
        # from the transport's client (redis-py, py-amqp) once connected.
        errors: tuple[type[BaseException], ...] = (
            OperationalError,
            OSError,
            *unopened.connection_errors,
        )
    try:
        with broker_connection(app, timeout) as connection:
            yield connection
    except errors as error:
        message = (
            f"the broker at {url} did not answer within {timeout:g}s "
            f"({type(error).__name__}: {error}); start it or fix the setting"
        )
        raise BrokerUnavailableError(setting_problem(settings, "broker.url", message)) from None


def results_status(app: ProjectCelery, timeout: float) -> str:
    """``ok``, or ``down: <error type>`` when the result backend is unreachable."""
    settings = app.settings
    try:
        if settings.results.is_redis:
            with results_redis(settings, timeout) as client:
                client.ping()
        elif not (settings.data_dir / "results").is_dir():
            raise FileNotFoundError(settings.data_dir / "results")
    except Exception as error:  # any failure means down; its type says why
        return f"down: {type(error).__name__}"
    return "ok"
