"""Tasks, one module per domain. ``typed`` holds the machinery they share."""

# What PENDING means, for the CLI and API: the result store has nothing under the id.
PENDING_NOTE = (
    "no result stored: the task is queued or not yet started, the id is unknown, "
    "or the task stores no result (ignore_result)"
)
# Said when a task that stores no result is queued: its status will never change.
NO_RESULT_NOTE = (
    "this task stores no result (ignore_result): its status reads PENDING for ever, "
    "even once it has run"
)
