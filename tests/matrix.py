"""The render matrix, read from cookiecutter.json so a new option value is tested
without editing the tests."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).resolve().parents[1]
OPTIONS: dict[str, Any] = json.loads((TEMPLATE / "cookiecutter.json").read_text())


def choices() -> dict[str, list[Any]]:
    """Every value each multiple-choice option can take."""
    return {
        "python_version": list(OPTIONS["_supported_python_versions"]),
        "broker": list(OPTIONS["broker"]),
        "include_api": [True, False],
        "license": list(OPTIONS["license"]),
    }


@dataclass(frozen=True)
class Combination:
    """One rendering of the template."""

    python_version: str
    broker: str
    include_api: bool
    license: str

    @property
    def id(self) -> str:
        """Readable test id, e.g. py312-redis-api-MIT."""
        api = "api" if self.include_api else "noapi"
        return f"py{self.python_version.replace('.', '')}-{self.broker}-{api}-{self.license}"

    @property
    def slug(self) -> str:
        """A distinct project per combination (license left out: it changes no code)."""
        api = "api" if self.include_api else "noapi"
        return f"{self.broker}-{api}-py{self.python_version.replace('.', '')}"

    def extra_context(self) -> dict[str, str]:
        """Answers for cookiecutter, as the command line would give them."""
        return {
            "project_name": self.slug,
            "python_version": self.python_version,
            "broker": self.broker,
            "include_api": "yes" if self.include_api else "no",
            "license": self.license,
        }


def matrix() -> list[Combination]:
    """Every broker x API pair (they change the architecture); every other value at
    least once, cycled across those pairs."""
    values = choices()
    pairs = list(itertools.product(values["broker"], values["include_api"]))
    size = max(len(pairs), len(values["python_version"]), len(values["license"]))
    return [
        Combination(
            python_version=values["python_version"][i % len(values["python_version"])],
            broker=pairs[i % len(pairs)][0],
            include_api=pairs[i % len(pairs)][1],
            license=values["license"][i % len(values["license"])],
        )
        for i in range(size)
    ]
