"""The local profile's embedded broker and result store: kombu's filesystem transport
and Celery's file result backend, with whole-file writes.

Both write a file in place, so a reader at that moment can take it empty or half
written: a polling worker then dies on the JSON error (celery/kombu#1551, open) and a
caller waiting for a result fails to decode it. Here each file is written under a name
the readers ignore, then renamed into place: a reader sees a whole file or none.
Everything else is kombu's and Celery's.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from time import monotonic
from typing import Any

from celery.backends.filesystem import FilesystemBackend
from kombu.transport import filesystem
from kombu.utils.encoding import ensure_bytes
from kombu.utils.json import dumps

TRANSPORT = f"{__name__}:Transport"
# Celery takes a backend class before "+" in a result URL.
RESULT_BACKEND = f"{__name__}.ResultBackend"


class Channel(filesystem.Channel):
    """A filesystem channel whose messages appear complete or not at all."""

    # kombu's stubs give _put two signatures (its filesystem and its base channel); this
    # matches the filesystem one, which is the one kombu calls here.
    def _put(self, queue: str, payload: dict[str, Any], **_: Any) -> None:  # type: ignore[override]
        """Write ``payload`` beside the queue's files, then rename it into the queue."""
        # kombu's own name: the poller takes files in name order, and by queue suffix.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        folder = Path(self.data_folder_out)
        write_whole(folder / name, dumps(payload).encode())


class Transport(filesystem.Transport):
    """kombu's filesystem transport with the channel above."""

    Channel = Channel


class ResultBackend(FilesystemBackend):
    """Celery's file result backend whose result files appear whole or not at all."""

    def set(self, key: str | bytes, value: str | bytes) -> None:
        """Store ``value`` under ``key`` in one rename."""
        # Celery keeps the folder and keys as bytes; _filename is not in the stubs.
        filename = self._filename(key)  # type: ignore[attr-defined]
        write_whole(Path(os.fsdecode(filename)), ensure_bytes(value))


def write_whole(target: Path, data: bytes) -> None:
    """Write ``data`` to a hidden file beside ``target``, then rename it to ``target``."""
    descriptor, partial = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".partial")
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    Path(partial).replace(target)
