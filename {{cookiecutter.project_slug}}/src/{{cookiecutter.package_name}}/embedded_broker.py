"""The local profile's broker: kombu's filesystem transport, with whole-file writes.

kombu writes a message file in place, so a worker polling at that moment can take it
while it is still empty and die on the JSON error (celery/kombu#1551, open). This
channel writes each message under a name the poller ignores, then renames it into
place: a poller sees a whole message or none. Everything else is kombu's.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from time import monotonic
from typing import Any

from kombu.transport import filesystem
from kombu.utils.json import dumps

TRANSPORT = f"{__name__}:Transport"


class Channel(filesystem.Channel):
    """A filesystem channel whose messages appear complete or not at all."""

    # kombu's stubs give _put two signatures (its filesystem and its base channel); this
    # matches the filesystem one, which is the one kombu calls here.
    def _put(self, queue: str, payload: dict[str, Any], **_: Any) -> None:  # type: ignore[override]
        """Write ``payload`` beside the queue's files, then rename it into the queue."""
        # kombu's own name: the poller takes files in name order, and by queue suffix.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        folder = Path(self.data_folder_out)
        descriptor, partial = tempfile.mkstemp(dir=folder, prefix=".", suffix=".partial")
        with os.fdopen(descriptor, "w") as file:
            file.write(dumps(payload))
        Path(partial).replace(folder / name)


class Transport(filesystem.Transport):
    """kombu's filesystem transport with the channel above."""

    Channel = Channel
