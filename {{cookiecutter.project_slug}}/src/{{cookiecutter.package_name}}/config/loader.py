"""Load settings from their layers and tell where each value came from.

Layers, lowest to highest: code defaults < ``config/<profile>.toml`` < ``.env`` <
environment variables. pydantic-settings merges the layers; it does not record
which layer won, so ``explain`` and the error messages ask each layer again
(pydantic-settings has no provenance API).

The profile is chosen once, before any layer is read: by ``--profile``, else
``APP_ENV`` from the environment, else ``APP_ENV`` from ``.env``, else ``local``. No
layer can change it afterwards, so the production checks cannot be switched off.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, get_args

from dotenv import dotenv_values
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import DotEnvSettingsSource, EnvSettingsSource
from pydantic_settings.exceptions import SettingsError

from .settings import ProductionValuesError, Profile, Settings, environment_variable

PROFILE_VARIABLE = "APP_ENV"
MASK = "**********"
ENVIRONMENT = "environment"
DOTENV = ".env"
DEFAULT = "default"

# KEDA reads the committed manifest, not a running worker's settings: a value set in the
# environment or another profile would change nothing, so it is refused (keda.py).
DEPLOY_ONLY = re.compile(r"worker\.(?:\w+\.)?keda(?:\.|$)")
# (layer name, flattened values), highest layer first.
Layers = list[tuple[str, dict[str, Any]]]


class ConfigError(Exception):
    """The configuration cannot be loaded; one line per problem says what to fix."""


@dataclass(frozen=True)
class SettingValue:
    """One effective setting, masked when secret, and the layer that set it."""

    key: str
    value: Any
    source: str


def active_profile(explicit: str | None = None, env_file: Path | None = Path(".env")) -> Profile:
    """The profile named by ``--profile``, else by APP_ENV (environment, then .env), else local."""
    name, origin = _profile_name(explicit, env_file)
    try:
        return Profile(name)
    except ValueError:
        choices = ", ".join(p.value for p in Profile)
        raise ConfigError(
            f"profile ({origin}): {name!r} is not a profile; use one of {choices}"
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
    chosen = active_profile(profile, env_file)
    layers = _layers(chosen, env_file)
    problems = [
        _line("profile", source, "chosen only by --profile or APP_ENV; remove it here")
        for source, values in layers
        if "profile" in values
    ]
    keda_source = profile_file(Profile.PRODUCTION)
    keda_only = f"read only by `kubernetes` (it writes keda.yaml); set it in {keda_source}"
    problems += [
        _line(key, source, keda_only)
        for source, values in layers
        if source != keda_source
        for key in values
        if DEPLOY_ONLY.match(key)
    ]
    if problems:
        raise ConfigError("\n".join(problems))
    try:
        return Settings(_env_file=env_file, **read_profile(chosen), profile=chosen)
    except ValidationError as error:
        raise ConfigError("\n".join(_describe(error, layers))) from None


def explain(settings: Settings, env_file: Path | None = Path(".env")) -> list[SettingValue]:
    """Every effective value, secrets masked, with the layer it came from."""
    layers = _layers(settings.profile, env_file)
    rows = []
    for key, value in _flatten(settings.model_dump()):
        source = f"{PROFILE_VARIABLE} or --profile" if key == "profile" else _source(key, layers)
        rows.append(SettingValue(key, _display(value), source))
    return rows


def setting_problem(
    settings: Settings, key: str, message: str, env_file: Path | None = Path(".env")
) -> str:
    """One error line, as load_settings writes them, for a value that is valid alone but
    wrong with others (checked once the app is built)."""
    return _line(key, _source(key, _layers(settings.profile, env_file)), message)


def _profile_name(explicit: str | None, env_file: Path | None) -> tuple[str, str]:
    """The profile's name and where it was named, for messages."""
    if explicit:
        return explicit, "--profile"
    if os.environ.get(PROFILE_VARIABLE):
        return os.environ[PROFILE_VARIABLE], f"{PROFILE_VARIABLE}, from {ENVIRONMENT}"
    if env_file is not None and env_file.is_file():
        named = dotenv_values(env_file).get(PROFILE_VARIABLE)
        if named:
            return named, f"{PROFILE_VARIABLE}, from {DOTENV}"
    return Profile.LOCAL.value, DEFAULT


def _layers(profile: Profile, env_file: Path | None) -> Layers:
    """Each layer's own values, flattened to dotted keys, highest layer first."""
    sources: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        (ENVIRONMENT, EnvSettingsSource(Settings)),
        (DOTENV, DotEnvSettingsSource(Settings, env_file=env_file) if env_file else dict),
    ]
    layers: Layers = []
    problems = []
    for name, read in sources:
        try:
            values = read()
        except SettingsError as error:  # a list or object value that is not valid JSON
            # pydantic-settings names the field only in its message.
            field = re.search(r'field "([^"]+)"', str(error))
            problems.append(
                _line(
                    field.group(1) if field else "settings",
                    name,
                    f"a value is not valid JSON ({error.__cause__}); "
                    'write lists and objects as JSON, e.g. ["default", "cpu"]',
                )
            )
            continue
        # An unknown .env variable keeps its "__" (logg__level): spell it as a key.
        layers.append((name, {k.replace("__", "."): v for k, v in _flatten(values)}))
    if problems:
        raise ConfigError("\n".join(problems))
    layers.append((profile_file(profile), dict(_flatten(read_profile(profile)))))
    return layers


def _describe(error: ValidationError, layers: Layers) -> list[str]:
    """One line per validation error: key, variable, source layer, what is wrong."""
    lines = []
    for item in error.errors():
        cause = item.get("ctx", {}).get("error")
        if isinstance(cause, ProductionValuesError):
            lines += [_line(p.key, _source(p.key, layers), p.message) for p in cause.problems]
            continue
        parts = [str(part) for part in item["loc"] if isinstance(part, str)]
        key = ".".join(parts).replace("__", ".") or "settings"
        lines.append(_line(key, _source(key, layers), _what(item, key)))
    return lines


def _line(key: str, source: str, message: str) -> str:
    """``key (VARIABLE, from source): message``; a section's variable ends in ``__*``."""
    variable = environment_variable(key)
    if _is_section(_annotation(key)):
        variable += "__*"
    where = source if source == DEFAULT else f"from {source}"
    return f"{key} ({variable}, {where}): {message}"


def _what(item: Any, key: str) -> str:
    """What is wrong, in words, with the offending value unless it is secret."""
    if item["type"] == "extra_forbidden":
        return "not a setting; check the spelling against the README's settings table"
    message: str = item["msg"].removeprefix("Value error, ")
    if item["type"] in ("value_error", "log_level"):
        return message  # our own validators' messages already name the value
    message = message[0].lower() + message[1:]
    indexes = [part for part in item["loc"] if isinstance(part, int)]
    if indexes:
        message = f"item {indexes[0]}: {message}"
    value = item.get("input")
    if not _is_secret(_annotation(key)) and isinstance(value, str | int | float | bool):
        message += f" (got {value!r})"
    return message


def _source(key: str, layers: Layers) -> str:
    """The highest layer that sets ``key`` (or, for a section, any key in it)."""
    for name, values in layers:
        if key in values or any(found.startswith(f"{key}.") for found in values):
            return name
    return DEFAULT


def _annotation(key: str) -> Any:
    """The type annotation of a dotted key, or None for an unknown key."""
    model: Any = Settings
    annotation: Any = None
    for part in key.split("."):
        fields = getattr(model, "model_fields", None)
        if not isinstance(fields, dict) or part not in fields:
            return None
        model = annotation = fields[part].annotation
    return annotation


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in get_args(annotation)


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
