"""Layered, validated configuration.

Use :func:`load_settings` once at start-up and pass the result on; nothing in the
package reads the environment on its own.
"""

from .loader import (
    PROFILE_VARIABLE,
    ConfigError,
    SettingValue,
    active_profile,
    explain,
    load_settings,
    setting_problem,
)
from .settings import Profile, Settings

__all__ = [
    "PROFILE_VARIABLE",
    "ConfigError",
    "Profile",
    "SettingValue",
    "Settings",
    "active_profile",
    "explain",
    "load_settings",
    "setting_problem",
]
