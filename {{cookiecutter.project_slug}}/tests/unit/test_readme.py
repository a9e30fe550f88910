"""The README and .env.example document every setting, so neither drifts from the model;
the README quotes the benchmark run that docs/performance.md holds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from {{ cookiecutter.package_name }}.config import (
    Profile,
    Settings,
    explain,
    load_settings,
)
from {{ cookiecutter.package_name }}.config.loader import DEPLOY_ONLY, read_profile
from {{ cookiecutter.package_name }}.config.settings import (
    environment_variable,
)

from ..monitoring import alert_rules

PROJECT = Path(__file__).resolve().parents[2]
README = PROJECT / "README.md"
PERFORMANCE = PROJECT / "docs" / "performance.md"
# Periodic entries are named by the user: their keys are documented as the section.
SCHEDULE = "beat.schedule"


def setting_keys() -> list[str]:
    """The keys of the local profile (it has a sample schedule entry), entries as one."""
    keys = [row.key for row in explain(load_settings("local", env_file=None))]
    assert any(key.startswith(f"{SCHEDULE}.") for key in keys), "the sample entry is gone"
    unique = dict.fromkeys(SCHEDULE if key.startswith(f"{SCHEDULE}.") else key for key in keys)
    return [key for key in unique if key != "profile"]


def test_every_setting_and_its_variable_is_documented() -> None:
    text = README.read_text()
    missing = [
        key
        for key in setting_keys()
        if f"`{key}`" not in text
        or (f"`{environment_variable(key)}`" not in text and not DEPLOY_ONLY.match(key))
    ]
    assert missing == []


def test_env_example_lists_every_variable() -> None:
    text = (PROJECT / ".env.example").read_text()
    missing = [
        key
        for key in setting_keys()
        if environment_variable(key) not in text and not DEPLOY_ONLY.match(key)
    ]
    assert missing == []


def flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested TOML table as dotted keys."""
    found: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            found |= flat(value, f"{prefix}{key}.")
        else:
            found[f"{prefix}{key}"] = value
    return found


def test_production_overrides_are_noted_in_the_settings_table() -> None:
    # The Default column gives the code's value; a row whose value config/production.toml
    # changes says so ("`2` in `production`"). The URLs are compose's service names,
    # described under Configuration and Containers instead.
    defaults = {row.key: row.value for row in explain(Settings(_env_file=None), env_file=None)}
    table = [line for line in README.read_text().splitlines() if line.startswith("| `")]
    rows = {line.split("`")[1]: line for line in table}
    unnoted = [
        key
        for key, value in flat(read_profile(Profile.PRODUCTION)).items()
        if value != defaults[key]
        and not key.endswith(".url")
        and not DEPLOY_ONLY.match(key)
        and "`production`" not in rows[key]
    ]
    assert unnoted == []


def anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_has_a_runbook_entry_its_link_reaches() -> None:
    text = README.read_text()
    anchors = {anchor(heading) for heading in re.findall(r"^#+ (.+)$", text, re.M)}
    runbook = re.search(r"^### Alerts and runbook$(?P<body>.*?)(?=^##? |\Z)", text, re.M | re.S)
    assert runbook is not None, "no '### Alerts and runbook' section"
    entries = dict(re.findall(r"^#### (\w+)\n\n(.+?)(?=^#|\Z)", runbook["body"], re.M | re.S))
    names = [rule["alert"] for rule in alert_rules()]
    assert sorted(entries) == sorted(names), "one runbook entry per alert, no more"
    for rule in alert_rules():
        page, _, fragment = rule["annotations"]["runbook_url"].partition("#")
        assert page == README.name
        assert fragment in anchors, rule["alert"]
        assert f"[`{rule['alert']}`](#{fragment})" in runbook["body"], "listed in the table"
        assert len(entries[rule["alert"]].split()) >= 30, f"{rule['alert']}: say what to do"


def test_the_readme_quotes_the_benchmark_run_of_docs_performance() -> None:
    """Its rows and the machine they ran on, word for word: a new run updates both."""
    text = README.read_text()
    section = re.search(r"^## Performance$(?P<body>.*?)(?=^## )", text, re.M | re.S)
    assert section is not None, "no '## Performance' section"
    lines = section["body"].splitlines()
    quoted = [line for line in lines if line.startswith(("| ", "Measured "))]
    assert len(quoted) >= 4, "the machine line, the header and the rows"
    documented = set(PERFORMANCE.read_text().splitlines())
    assert [line for line in quoted if line not in documented] == []
