"""Dependencies shared by the routes: the app's settings, Celery app and API key check."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader
from pydantic import SecretStr

from ..celery_app import ProjectCelery
from ..config import Settings

API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False)


def get_settings(request: Request) -> Settings:
    """The settings the API was built with."""
    settings: Settings = request.app.state.settings
    return settings


def get_celery(request: Request) -> ProjectCelery:
    """The Celery app the API enqueues through."""
    celery: ProjectCelery = request.app.state.celery
    return celery


SettingsDep = Annotated[Settings, Depends(get_settings)]
CeleryDep = Annotated[ProjectCelery, Depends(get_celery)]


def api_key_guard(expected: SecretStr) -> Callable[..., None]:
    """A dependency that rejects requests whose X-API-Key is not ``expected``."""

    def require_api_key(given: Annotated[str | None, Security(API_KEY_HEADER)] = None) -> None:
        # compare_digest takes the same time whatever the mismatch, so timing reveals nothing.
        # An empty header never matches, even an empty expected key.
        if not given or not secrets.compare_digest(
            given.encode(), expected.get_secret_value().encode()
        ):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="missing or wrong X-API-Key header",
                headers={"WWW-Authenticate": "X-API-Key"},
            )

    return require_api_key
