"""deploy/prometheus: promtool accepts the scrape config and the rules, and its unit
tests (alerts.test.yml) see every alert fire and stay silent."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
import yaml

from ..monitoring import PROMETHEUS, alert_rules, prometheus_tool

SEVERITIES = {"critical", "warning"}


@pytest.mark.parametrize(
    "command",
    [
        ("check", "config", "prometheus.yml"),
        ("check", "rules", "alerts.yml"),
        ("test", "rules", "alerts.test.yml"),
    ],
    ids=" ".join,
)
def test_promtool_passes(command: tuple[str, ...]) -> None:
    result = subprocess.run(
        [prometheus_tool("promtool"), *command],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_tested_firing_and_silent() -> None:
    cases: list[dict[str, Any]] = [
        case
        for test in yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())["tests"]
        for case in test["alert_rule_test"]
    ]
    names = {rule["alert"] for rule in alert_rules()}
    fired = {case["alertname"] for case in cases if case["exp_alerts"]}
    silent = {case["alertname"] for case in cases if not case["exp_alerts"]}
    assert names - fired == set(), "alerts never seen firing"
    assert names - silent == set(), "alerts never seen silent"
    assert fired | silent <= names, "tests of alerts that do not exist"


def test_every_alert_waits_names_its_severity_and_links_its_runbook() -> None:
    for rule in alert_rules():
        name = rule["alert"]
        assert re.fullmatch(r"\d+m", rule["for"]), f"{name}: for is {rule.get('for')}"
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert rule["annotations"]["summary"], name
        assert rule["annotations"]["runbook_url"] == f"README.md#{name.lower()}", name
