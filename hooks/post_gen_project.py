"""Remove the files of options that were not selected, then print the next steps.

Optional files live in one table (paths_to_remove) so the template has a single
mechanism for them; the shared files only carry section-level if-blocks.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any


def paths_to_remove(answers: dict[str, Any]) -> list[Path]:
    """Return the project-relative paths that belong to unselected options."""
    package = Path("src") / answers["package_name"]
    removed: list[Path] = []
    if not answers["include_api"]:
        removed += [
            package / "api",
            Path("tests/unit/test_api.py"),
            Path("tests/property/test_api_schema.py"),
            Path("tests/integration/test_api_roundtrip.py"),
            Path("benchmarks/api_latency.py"),
            Path("deploy/kubernetes/base/api.yaml"),
        ]
    if answers["broker"] != "rabbitmq":  # Redis has no dead-letter queue
        removed += [package / "dead_letters.py", Path("tests/unit/test_dead_letters.py")]
    # The benchmark plot of the other broker (docs/performance.md shows this one's).
    removed += [
        Path("docs") / f"performance-{broker}.png"
        for broker in ("redis", "rabbitmq")
        if broker != answers["broker"]
    ]
    return removed


def remove_paths(root: Path, relative_paths: list[Path]) -> None:
    """Delete files and folders under root; a missing path is a template bug."""
    for relative in relative_paths:
        target = root / relative
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()


# The first commands of CONTRIBUTING.md, in its order (a template test keeps the two
# equal): the first `make install` writes uv.lock, so `git add` comes after it.
SETUP_COMMANDS = (
    "git init",
    "make install",
    "git add -A",
    'git commit -m "Start from the template"',
)


def next_steps(answers: dict[str, Any], project: Path) -> str:
    """The commands a new user runs first, from wherever they rendered the project."""
    slug = answers["project_slug"]
    folder = shlex.quote(str(project))
    return "\n".join(
        [
            f"Created {project}. Next steps:",
            f"  cd {folder}",
            *(f"  {command}" for command in SETUP_COMMANDS),
            "Then a worker on the embedded broker, restarted when src/ changes; leave it running:",
            "  make worker",
            "and from a second terminal, in the same folder:",
            f"  uv run {slug} submit process_data --json "
            '\'{"value": 1, "label": "hello"}\' --wait',
            "CONTRIBUTING.md walks through the rest of the first day.",
        ]
    )


def main() -> int:
    """Run in the freshly rendered project folder (cookiecutter's working directory)."""
    answers = json.loads(r"""{{ cookiecutter | tojson }}""")
    project = Path.cwd()
    remove_paths(project, paths_to_remove(answers))
    print(next_steps(answers, project))
    return 0


if __name__ == "__main__":
    sys.exit(main())
