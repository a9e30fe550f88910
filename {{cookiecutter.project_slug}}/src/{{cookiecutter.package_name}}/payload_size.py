"""Refuse a publish whose arguments are too large to travel in a task message.

A task message is JSON: the broker keeps every byte until a worker takes it (Redis in
memory), the result store keeps the arguments again with ``results.extended``, and every
worker process that receives the message decodes all of it. A blob in the arguments (a
file's bytes, a whole report) multiplies that by every call; pass a reference to where
the data lives (a URL, an id) instead.

``ProjectCelery.check_publish`` calls ``check_payload`` before anything is sent, for
every broker; every publish goes through it: ``delay``, ``apply_async``, signatures and
canvases, retries, ``send_task``. The API's ``api.max_body_bytes`` bounds a request
body, not what a task is sent from elsewhere (the CLI, beat, other tasks), so this
applies at every publish whatever the body limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kombu.utils.json import dumps

SETTING = "tasks.max_payload_bytes"
# Options whose signatures travel inside the message (Celery's "embed": the later steps
# of a chain, a chord's body, callbacks and errbacks): their arguments are sent now.
CARRIED = ("chain", "chord", "link", "link_error")


class PayloadTooLargeError(ValueError):
    """A task's arguments are larger than ``tasks.max_payload_bytes``; nothing was sent."""


def check_payload(name: str, call: Mapping[str, Any], limit: int) -> None:
    """PayloadTooLargeError if the message ``call`` would publish is over ``limit`` bytes.

    ``call`` holds ``send_task``'s arguments by name (``args``, ``kwargs``, ``chain``,
    ...). Arguments that are not JSON at all pass: Celery refuses those itself, with
    kombu's ``EncodeError``, which callers may already handle.
    """
    body: list[Any] = [call.get("args") or (), call.get("kwargs") or {}]
    carried = {key: call[key] for key in CARRIED if call.get(key)}
    if carried:
        body.append(carried)
    # The serializer Celery uses for the message body (task_serializer is "json"), so
    # this is what the broker will hold; all ASCII, as kombu escapes other characters.
    try:
        size = len(dumps(body))
    except (TypeError, ValueError):
        return
    if size > limit:
        raise PayloadTooLargeError(refusal(name, size, limit, carries_steps=bool(carried)))


def refusal(name: str, size: int, limit: int, carries_steps: bool = False) -> str:
    """The one-line error: the task, the size, the setting and its value, the ways out."""
    short = name.rsplit(".", 1)[-1]
    what = "arguments and the canvas steps it carries" if carries_steps else "arguments"
    return (
        f"{short}: {what} are {size:,} bytes as JSON, over {SETTING} ({limit:,}); "
        "pass a reference (a URL, an id) instead of the data, or raise the setting"
    )
