"""The work of ``process_data`` as a plain Celery task: keyword arguments in, a dict out.

What a project without typed tasks would write; the worker of the throughput and
typed-vs-plain benchmarks imports it with ``--include=benchmarks.plain``.
"""

from __future__ import annotations

from celery import shared_task

PLAIN_TASK = "benchmarks.process_data_plain"


@shared_task(name=PLAIN_TASK)
def process_data_plain(value: int, label: str) -> dict[str, str]:
    """Turn one record into its message, with no model on either side."""
    return {"message": f"Processed: {value} - {label}"}
