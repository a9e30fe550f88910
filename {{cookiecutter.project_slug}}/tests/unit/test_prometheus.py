"""deploy/prometheus: promtool accepts the scrape config and the rules, and its unit
tests (alerts.test.yml) see every alert fire and stay silent."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..monitoring import GRAFANA, PROJECT, PROMETHEUS, alert_rules, prometheus_tool

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
    promtool(*command, folder=PROMETHEUS)


def promtool(*command: str, folder: Path) -> None:
    """Run promtool in a folder; fail with its output unless it reports success."""
    result = subprocess.run(  # noqa: S603 - promtool on our own files
        [prometheus_tool("promtool"), *command],
        cwd=folder,
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


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each panel's query, as a recording rule (Grafana fills in
    ``$__rate_interval``); the integration test runs them against a real Prometheus."""
    dashboard = json.loads((GRAFANA / "dashboards" / "celery.json").read_text())
    rules = [
        {
            "record": f"panel_{panel['id']}_{target['refId']}",
            "expr": target["expr"].replace("$__rate_interval", "5m"),
        }
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]
    panels = {"groups": [{"name": "panels", "rules": rules}]}
    (tmp_path / "panels.yml").write_text(yaml.safe_dump(panels))
    promtool("check", "rules", "panels.yml", folder=tmp_path)


def test_the_dashboard_reads_the_provisioned_data_source_from_the_mounted_folder() -> None:
    dashboard = json.loads((GRAFANA / "dashboards" / "celery.json").read_text())
    provisioning = GRAFANA / "provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "dashboards.yml").read_text())[
        "providers"
    ]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        for user in [panel, *panel["targets"]]:
            assert user["datasource"] == {"type": source["type"], "uid": source["uid"]}
    compose = yaml.safe_load((PROJECT / "compose.yaml").read_text())
    grafana = compose["services"]["grafana"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in grafana["volumes"]
    assert source["url"] == "http://prometheus:9090"
