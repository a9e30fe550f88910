"""The README and .env.example document every setting, so neither drifts from the model."""

from __future__ import annotations

from pathlib import Path

from {{ cookiecutter.package_name }}.config import (
    explain,
    load_settings,
)
from {{ cookiecutter.package_name }}.config.loader import DEPLOY_ONLY
from {{ cookiecutter.package_name }}.config.settings import (
    environment_variable,
)

PROJECT = Path(__file__).resolve().parents[2]
README = PROJECT / "README.md"
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
