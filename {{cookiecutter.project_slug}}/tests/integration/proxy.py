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
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

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

    def close(self) -> None:
        """Stop listening and drop every connection."""
        self._listener.close()
        self._drop_all()


def proxy_to(url: str) -> tuple[CuttableProxy, str]:
    """A proxy to the broker at ``url``, and the URL that goes through it."""
    address = urlsplit(url)
    proxy = CuttableProxy((address.hostname or "127.0.0.1", address.port or 0))
    return proxy, address._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
