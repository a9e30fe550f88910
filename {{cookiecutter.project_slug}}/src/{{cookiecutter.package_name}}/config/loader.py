"""Load settings from their layers and tell where each value came from.

Layers, lowest to highest: code defaults < ``config/<profile>.toml`` < ``.env`` <
environment variables. pydantic-settings merges the layers; it does not record
which layer won, so ``explain`` asks each layer again (pydantic-settings has no
provenance API).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic_settings import DotEnvSettingsSource, EnvSettingsSource

from .settings import Profile, Settings

PROFILE_VARIABLE = "APP_ENV"
MASK = "**********"


class ConfigError(Exception):
    """The configuration cannot be loaded; the message says what to fix."""


@dataclass(frozen=True)
class SettingValue:
    """One effective setting, masked when secret, and the layer that set it."""

    key: str
    value: Any
    source: str


def active_profile(explicit: str | None = None) -> Profile:
    """The profile named explicitly, else by APP_ENV, else ``local``."""
    name = explicit or os.environ.get(PROFILE_VARIABLE) or Profile.LOCAL.value
    try:
        return Profile(name)
    except ValueError:
        choices = ", ".join(p.value for p in Profile)
        raise ConfigError(
            f"unknown profile {name!r} (from {PROFILE_VARIABLE} or --profile); "
            f"choose one of: {choices}"
        ) from None


def profile_file(profile: Profile) -> str:
    """Where a profile's TOML lives, for messages."""
    return f"config/{profile.value}.toml"


def read_profile(profile: Profile) -> dict[str, Any]:
    """The values a profile file sets (the file ships inside the package)."""
    text = resources.files(__package__).joinpath(f"{profile.value}.toml").read_text()
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{profile_file(profile)} is not valid TOML: {error}") from None


def load_settings(profile: str | None = None, env_file: Path | None = Path(".env")) -> Settings:
    """Build validated settings for a profile; raise ConfigError naming every problem."""
    chosen = active_profile(profile)
    values = {**read_profile(chosen), "profile": chosen}
    try:
        return Settings(_env_file=env_file, **values)
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        raise ConfigError(f"invalid configuration for profile {chosen.value!r}:\n{error}") from None


def explain(settings: Settings, env_file: Path | None = Path(".env")) -> list[SettingValue]:
    """Every effective value, secrets masked, with the layer it came from."""
    layers: list[tuple[str, dict[str, Any]]] = [
        ("environment", EnvSettingsSource(Settings)()),
        (".env", DotEnvSettingsSource(Settings, env_file=env_file)() if env_file else {}),
        (profile_file(settings.profile), read_profile(settings.profile)),
    ]
    flat_layers = [(name, dict(_flatten(values))) for name, values in layers]
    rows = []
    for key, value in _flatten(settings.model_dump()):
        source = next((name for name, flat in flat_layers if key in flat), "default")
        if key == "profile":
            source = f"{PROFILE_VARIABLE} or --profile"
        rows.append(SettingValue(key, _display(value), source))
    return rows


def _display(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value.value if isinstance(value, Profile) else value


def _flatten(values: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{dotted}.")
        else:
            yield dotted, value
