"""Clients that tasks use, built once per worker process and replaceable in tests.

Tasks never create clients at import time or keep them in module globals: they ask
``current_resources()`` (see ``celery_app``), which returns what the app's
``ResourceProvider`` built. Tests pass a provider with fakes to ``create_app``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any, Protocol

import redis

from .config import Settings

logger = logging.getLogger(__name__)


class TransientError(Exception):
    """A failure worth retrying: the next attempt may succeed."""


class Ledger(Protocol):
    """Records side effects exactly once per idempotency key."""

    def record_once(self, key: str, entry: dict[str, Any]) -> bool:
        """Store entry unless key was seen; return whether it was stored."""
        ...

    def entries(self) -> list[dict[str, Any]]:
        """Everything recorded so far."""
        ...


class Gateway(Protocol):
    """Delivers messages to a partner system; may raise TransientError."""

    def deliver(self, recipient: str, body: str) -> None:
        """Send one message."""
        ...


class RedisLedger:
    """Key check and write in one Lua script, so a redelivered task cannot double-apply.

    Keys expire after ``key_ttl`` seconds; the journal of entries keeps the newest
    ``journal_size``, so neither grows without bound.
    """

    _SCRIPT = """
    if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then
        redis.call('RPUSH', KEYS[2], ARGV[1])
        redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
        return 1
    end
    return 0
    """

    def __init__(
        self, client: redis.Redis, namespace: str, key_ttl: int, journal_size: int = 10_000
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._key_ttl = key_ttl
        self._journal_size = journal_size
        self._record = client.register_script(self._SCRIPT)

    def record_once(self, key: str, entry: dict[str, Any]) -> bool:
        """Store entry unless key was seen; return whether it was stored."""
        keys = [f"{self._namespace}:key:{key}", f"{self._namespace}:entries"]
        args: list[str | int] = [json.dumps(entry), self._key_ttl, self._journal_size]
        return bool(self._record(keys=keys, args=args))

    def entries(self) -> list[dict[str, Any]]:
        """The newest recorded entries, oldest first."""
        raw = self._client.lrange(f"{self._namespace}:entries", 0, -1)
        return [json.loads(item) for item in raw]


class DirectoryLedger:
    """One file per key, created with O_EXCL: atomic on a local filesystem."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def record_once(self, key: str, entry: dict[str, Any]) -> bool:
        """Store entry unless key was seen; return whether it was stored."""
        path = self._folder / f"{sha256(key.encode()).hexdigest()}.json"
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "w") as file:
            json.dump(entry, file)
        return True

    def entries(self) -> list[dict[str, Any]]:
        """Everything recorded so far."""
        return [json.loads(path.read_text()) for path in sorted(self._folder.glob("*.json"))]


class LoggingGateway:
    """Stand-in for a partner's HTTP client: logs each delivery. Replace with yours."""

    def deliver(self, recipient: str, body: str) -> None:
        """Send one message."""
        logger.info("delivered notification", extra={"recipient": recipient, "chars": len(body)})


@dataclass(frozen=True)
class Resources:
    """Everything a task may need besides its input."""

    settings: Settings
    ledger: Ledger
    gateway: Gateway


def build_resources(settings: Settings) -> Resources:
    """Real clients for the configured services."""
    return Resources(settings=settings, ledger=_build_ledger(settings), gateway=LoggingGateway())


def results_redis(settings: Settings, timeout: float | None = None) -> redis.Redis:
    """A client for the Redis that stores results (and the ledger)."""
    password = settings.results.password
    tls = settings.results.tls_options() if settings.results.uses_tls else {}
    return redis.Redis.from_url(
        settings.results.url,
        username=settings.results.username,
        password=password.get_secret_value() if password else None,
        socket_timeout=timeout or settings.broker.connection_timeout,
        **tls,
    )


def _build_ledger(settings: Settings) -> Ledger:
    if not settings.results.is_redis:
        return DirectoryLedger(settings.data_dir / "ledger")
    return RedisLedger(
        results_redis(settings), namespace=f"{__package__}:ledger", key_ttl=7 * 86400
    )


class ResourceProvider:
    """Builds resources lazily, once per process (a forked child builds its own)."""

    def __init__(
        self,
        settings: Settings,
        factory: Callable[[Settings], Resources] = build_resources,
    ) -> None:
        self._settings = settings
        self._factory = factory
        self._built: tuple[int, Resources] | None = None

    def get(self) -> Resources:
        """The resources of this process, built on first use."""
        if self._built is None or self._built[0] != os.getpid():
            self._built = (os.getpid(), self._factory(self._settings))
        return self._built[1]
