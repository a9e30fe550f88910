"""The FastAPI application, built from settings like the Celery app."""

from __future__ import annotations

from fastapi import FastAPI

from .. import __version__
from ..config import Settings


def create_api(settings: Settings) -> FastAPI:
    """An API for the given settings."""
    api = FastAPI(title="{{ cookiecutter.project_name }}", version=__version__)
    api.state.settings = settings

    @api.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: answers without touching the broker."""
        return {"status": "ok"}

    return api
