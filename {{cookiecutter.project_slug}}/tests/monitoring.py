"""What the monitoring tests share: the Prometheus files of deploy/ and promtool."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[1]
PROMETHEUS = PROJECT / "deploy" / "prometheus"
GRAFANA = PROJECT / "deploy" / "grafana"
INSTALL = "apt-get install --no-install-recommends prometheus (Debian and Ubuntu ship it)"


def unavailable(reason: str) -> NoReturn:
    """Fail under CI=true, skip elsewhere, saying why."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true requires it")
    pytest.skip(f"{reason} (CI=true makes this a failure)")


def prometheus_tool(name: str) -> str:
    """The path of ``promtool`` or ``prometheus``; skip (fail under CI) without it."""
    found = shutil.which(name)
    if found is None:
        unavailable(f"no {name} on PATH: {INSTALL}")
    return found


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule of alerts.yml, in file order."""
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]
