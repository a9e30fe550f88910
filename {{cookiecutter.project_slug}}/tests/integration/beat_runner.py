"""Run the command line with every publish recorded, to count what a beat sends.

``python -m tests.integration.beat_runner FILE beat --profile=test`` runs ``beat`` as
deployed and appends ``<unix time> <task id>`` to FILE for each message the broker
took (Celery's ``after_task_publish`` signal), so a test can tell which beat sent what.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from celery.signals import after_task_publish

from {{ cookiecutter.package_name }}.cli import main


def recorder(path: Path) -> Any:
    """A signal receiver appending one line per published message to ``path``."""

    def on_publish(headers: dict[str, Any], **_: Any) -> None:
        with path.open("a") as sink:
            sink.write(f"{time.time()} {headers['id']}\n")

    return on_publish


def run() -> None:
    """Connect the recorder, then hand the rest of the arguments to the CLI."""
    path = Path(sys.argv[1])
    after_task_publish.connect(recorder(path), weak=False)
    sys.argv = [sys.argv[0], *sys.argv[2:]]
    main()


if __name__ == "__main__":
    run()
