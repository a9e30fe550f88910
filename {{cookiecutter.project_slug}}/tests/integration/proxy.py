"""A loopback TCP proxy that can cut clients off from the broker, then let them back.

Restarting the real broker would disturb everything else using it (and Redis here may
keep nothing across a restart); from a client's side, an outage looks the same:
open connections drop and new ones fail until the broker is back. No library offers
this in-process (toxiproxy is a separate server), hence these few lines.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from urllib.parse import urlsplit


class CuttableProxy:
    """Forwards 127.0.0.1:``port`` to ``target`` until ``cut()``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._up = threading.Event()
        self._up.set()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._cut_at: tuple[bytes, threading.Event] | None = None
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            if not self._up.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if not self._up.is_set():  # cut while connecting
                    client.close()
                    upstream.close()
                    continue
                self._sockets += [client, upstream]
            for source, sink, replies in ((client, upstream, False), (upstream, client, True)):
                pump = (source, sink, replies)
                threading.Thread(target=self._pump, args=pump, daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, replies: bool) -> None:
        seen = b""  # the end of the last chunk: a marker (a task id) may straddle two
        with suppress(OSError):
            while data := source.recv(65536):
                if replies and self._cut_by(seen + data):
                    return  # dropped with every connection
                seen = data[-64:]
                sink.sendall(data)
        for end in (source, sink):
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def _cut_by(self, reply: bytes) -> bool:
        """Whether ``reply`` carries the marker ``cut_at_reply`` waits for (then cut)."""
        with self._lock:
            if self._cut_at is None or self._cut_at[0] not in reply:
                return False
            happened, self._cut_at = self._cut_at[1], None
            self._up.clear()
        self._drop_all()
        happened.set()
        return True

    def _drop_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for end in sockets:
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    @contextmanager
    def cut(self) -> Iterator[None]:
        """Drop every connection and refuse new ones until the block ends."""
        self._up.clear()
        self._drop_all()
        try:
            yield
        finally:
            self._up.set()

    @contextmanager
    def cut_at_reply(self, marker: bytes) -> Iterator[threading.Event]:
        """Cut as ``cut()`` does, the moment a reply from the broker carrying ``marker``
        passes, and drop that reply: the cut lands after the broker sent it and before
        the client read it. The event tells it happened; new connections are refused
        from then until the block ends."""
        happened = threading.Event()
        with self._lock:
            self._cut_at = (marker, happened)
        try:
            yield happened
        finally:
            with self._lock:
                self._cut_at = None
            self._up.set()

    def close(self) -> None:
        """Stop listening and drop every connection."""
        self._listener.close()
        self._drop_all()


def proxy_to(url: str) -> tuple[CuttableProxy, str]:
    """A proxy to the broker at ``url``, and the URL that goes through it."""
    address = urlsplit(url)
    proxy = CuttableProxy((address.hostname or "127.0.0.1", address.port or 0))
    return proxy, address._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
