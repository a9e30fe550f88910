"""Tasks, one module per domain. ``typed`` holds the machinery they share."""

# What PENDING means, for the CLI and API: the result store has nothing under the id.
PENDING_NOTE = (
    "no result stored: the task is queued or not yet started, the id is unknown, "
    "or the task stores no result (ignore_result)"
)
