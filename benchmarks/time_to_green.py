"""Time to green: render a project, set it up as CONTRIBUTING.md says, run its tests.

    ./scripts/time-to-green [--broker redis] [--api yes] [--test-command "make test"]

Prints the seconds of each phase: render (cookiecutter), setup (the first commands a
new project prints: git init, make install, the first commit) and test (``make test``:
every test, integration included, against the brokers on 127.0.0.1). A first untimed
render and install fill uv's cache, so the numbers are those of a warm cache, as on
any machine that has installed a project before. A benchmark: it judges nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
# CONTRIBUTING.md's first commands, as a new project prints them (a template test
# keeps the three equal).
SETUP = ["git init", "make install", "git add -A", 'git commit -m "Start from the template"']
# A commit needs an identity; a machine without one (CI) gets this, for the run only.
IDENTITY = {
    "GIT_AUTHOR_NAME": "time-to-green",
    "GIT_AUTHOR_EMAIL": "time-to-green@example.com",
    "GIT_COMMITTER_NAME": "time-to-green",
    "GIT_COMMITTER_EMAIL": "time-to-green@example.com",
}


def render(folder: Path, broker: str, api: str) -> Path:
    """Render the template without prompting; the project's folder."""
    answers = {"project_name": "Green Jobs", "broker": broker, "include_api": api}
    return Path(
        cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(folder), extra_context=answers)
    )


def run(commands: list[str], project: Path) -> None:
    """Run shell commands in the project, as a user types them; stop at a failure."""
    environment = IDENTITY | {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    for command in commands:
        print(f"$ {command}", flush=True)
        # A shell, as the user's: the commands are this script's own, quoted as typed.
        done = subprocess.run(command, shell=True, cwd=project, env=environment)  # noqa: S602
        if done.returncode != 0:
            raise SystemExit(f"`{command}` failed with exit code {done.returncode} in {project}")


def main(argv: list[str] | None = None) -> int:
    """Time each phase and print a summary (and JSON with --output)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", choices=["redis", "rabbitmq"], default="redis")
    parser.add_argument("--api", choices=["yes", "no"], default="yes")
    parser.add_argument("--test-command", default="make test", help="what counts as green")
    parser.add_argument("--output", type=Path, help="also write the timings here as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="time-to-green-") as scratch:
        print("warming uv's cache (untimed): render and uv sync", flush=True)
        warm = render(Path(scratch) / "warm", args.broker, args.api)
        run(["uv sync --quiet"], warm)
        seconds: dict[str, float] = {}
        start = time.perf_counter()
        project = render(Path(scratch) / "timed", args.broker, args.api)
        seconds["render"] = time.perf_counter() - start
        for phase, commands in (("setup", SETUP), ("test", [args.test_command])):
            start = time.perf_counter()
            run(commands, project)
            seconds[phase] = time.perf_counter() - start
    seconds["total"] = sum(seconds.values())
    summary = "  ".join(f"{phase} {value:.1f} s" for phase, value in seconds.items())
    print(f"time to green ({args.broker}, api={args.api}, `{args.test_command}`): {summary}")
    if args.output:
        record = {"broker": args.broker, "api": args.api, "test_command": args.test_command}
        args.output.write_text(json.dumps(record | {"seconds": seconds}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
