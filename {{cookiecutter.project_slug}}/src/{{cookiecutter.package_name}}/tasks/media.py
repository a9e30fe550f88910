"""CPU-bound media work on the ``cpu`` queue, with time limits that clean up."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Annotated

from celery.exceptions import SoftTimeLimitExceeded
from pydantic import ConfigDict, Field

from ..celery_app import current_resources
from .typed import TaskModel, typed_task

logger = logging.getLogger(__name__)

SourceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class ThumbnailRequest(TaskModel):
    """A thumbnail to render from a source image."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"source_id": "holiday-photo", "width": 128, "height": 96}]}
    )

    source_id: SourceId
    width: Annotated[int, Field(ge=1, le=4096)]
    height: Annotated[int, Field(ge=1, le=4096)]
    # How much work to do: stands in for the cost of a real resize.
    passes: Annotated[int, Field(ge=1, le=1_000_000)] = 1


class Thumbnail(TaskModel):
    """Where the rendered thumbnail was written."""

    source_id: str
    path: str
    digest: str


# The incident's leak, kept to practise finding one (README, Debugging): each call's
# pixels cached by task id "for a retry to reuse", and never evicted. Only with
# tasks.leak_thumbnails, which the production profile refuses.
_PIXELS_FOR_RETRY: dict[str, bytes] = {}


# The cpu queue has its own worker, so a backlog here never delays the default queue.
# Limits come from that queue's settings (tasks.cpu): the soft limit raises
# SoftTimeLimitExceeded inside the task so it can remove its partial output; the hard
# one kills the process.
# track_started: a thumbnail takes a while, and a caller polling its status can tell
# "running" (STARTED) from "waiting in the queue" (PENDING).
@typed_task(queue="cpu", track_started=True)
def render_thumbnail(request: ThumbnailRequest) -> Thumbnail:
    """Render a thumbnail; a partial file never outlives a timeout."""
    settings = current_resources().settings
    if settings.tasks.leak_thumbnails:
        # Written pixels, as a decoded image's are: always resident, as the memory guard
        # needs to see them (bytes(n) may get untouched zero pages, holding no RSS).
        retry_key = str(render_thumbnail.request.id)
        _PIXELS_FOR_RETRY[retry_key] = b"\x80" * (request.width * request.height)
    return render_into(request, settings.data_dir / "thumbnails")


def render_into(request: ThumbnailRequest, folder: Path) -> Thumbnail:
    """Write the thumbnail through a temporary file, renamed only when complete."""
    folder.mkdir(parents=True, exist_ok=True)
    descriptor, partial = tempfile.mkstemp(dir=folder, suffix=".partial")
    try:
        with os.fdopen(descriptor, "wb") as file:
            digest = render_pixels(request)
            file.write(digest)
        final = folder / f"{request.source_id}-{request.width}x{request.height}.thumb"
        Path(partial).replace(final)
    except SoftTimeLimitExceeded:
        logger.warning("time limit reached, removing partial output %s", partial)
        Path(partial).unlink(missing_ok=True)
        raise
    return Thumbnail(source_id=request.source_id, path=str(final), digest=digest.hex())


def render_pixels(request: ThumbnailRequest) -> bytes:
    """CPU-bound stand-in for resizing: hash the pixel buffer ``passes`` times."""
    digest = bytes(request.width * request.height)
    for _ in range(request.passes):
        digest = hashlib.sha256(digest).digest()
    return digest
