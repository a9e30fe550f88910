"""The README and .env.example document every setting, so neither drifts from the model."""

from __future__ import annotations

from pathlib import Path

from {{ cookiecutter.package_name }}.config import (
    explain,
    load_settings,
)
from {{ cookiecutter.package_name }}.config.settings import (
    environment_variable,
)

PROJECT = Path(__file__).resolve().parents[2]
README = PROJECT / "README.md"


def test_every_setting_and_its_variable_is_documented() -> None:
    text = README.read_text()
    keys = [row.key for row in explain(load_settings("local", env_file=None))]
    missing = [
        key
        for key in keys
        if key != "profile"
        and (f"`{key}`" not in text or f"`{environment_variable(key)}`" not in text)
    ]
    assert missing == []


def test_env_example_lists_every_variable() -> None:
    text = (PROJECT / ".env.example").read_text()
    keys = [row.key for row in explain(load_settings("local", env_file=None))]
    missing = [key for key in keys if key != "profile" and environment_variable(key) not in text]
    assert missing == []
