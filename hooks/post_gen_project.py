"""Remove the files of options that were not selected, then print the next steps.

Optional files live in one table (paths_to_remove) so the template has a single
mechanism for them; the shared files only carry section-level if-blocks.
"""

from __future__ import annotations

import json
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


def next_steps(answers: dict[str, Any]) -> str:
    """The commands a new user runs first."""
    slug = answers["project_slug"]
    return "\n".join(
        [
            f"Created {slug}. Next steps:",
            f"  cd {slug}",
            "  git init && git add -A        # start the history",
            "  uv sync                       # create .venv and uv.lock",
            f"  uv run {slug} worker &       # a worker on the embedded broker",
            f"  uv run {slug} submit process_data --json "
            '\'{"value": 1, "label": "hello"}\' --wait',
            "  uv run pytest                 # unit, property and integration tests",
        ]
    )


def main() -> int:
    """Run in the freshly rendered project folder."""
    answers = json.loads(r"""{{ cookiecutter | tojson }}""")
    remove_paths(Path.cwd(), paths_to_remove(answers))
    print(next_steps(answers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
