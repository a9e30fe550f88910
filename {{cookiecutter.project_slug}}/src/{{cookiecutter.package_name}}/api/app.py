"""The FastAPI application, built from settings like the Celery app."""

from __future__ import annotations

import os

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from prometheus_fastapi_instrumentator import Instrumentator

from .. import __version__, tracing
from ..celery_app import ProjectCelery, create_app
from ..config import PROFILE_VARIABLE, Settings, load_settings
from ..metrics import METRICS_DIR, use_multiprocess_dir
from ..tasks.typed import typed_tasks
from .limits import BodySizeLimit
from .routes import health
from .routes.tasks import task_router


def create_api(settings: Settings, celery: ProjectCelery | None = None) -> FastAPI:
    """An API for the given settings; ``celery`` lets tests share an app with a worker."""
    celery = celery or create_app(settings)
    api = FastAPI(title="{{ cookiecutter.project_name }}", version=__version__)
    api.state.settings = settings
    api.state.celery = celery
    api.include_router(health.router)
    api.include_router(task_router(typed_tasks(celery), settings.api.api_key))
    if settings.api.cors_origins:
        api.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.api.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-API-Key"],
        )
    api.add_middleware(BodySizeLimit, max_bytes=settings.api.max_body_bytes)
    api.exception_handler(RequestValidationError)(validation_error_response)
    tracing.instrument_api(api, settings.tracing)  # off by default
    if settings.metrics.enabled:
        expose_metrics(api)
    return api


def expose_metrics(api: FastAPI) -> None:
    """``GET /metrics``: requests by route template, method and status class, and latencies.

    Not behind the API key: a Prometheus scraper sends no X-API-Key (README, Metrics).
    A registry per app, as tests build several apps in one process; several uvicorn
    workers add up their counts through a shared folder (``serve``).
    """
    instrumentator = Instrumentator(registry=CollectorRegistry(), excluded_handlers=["/metrics"])
    instrumentator.instrument(api).expose(api, include_in_schema=False)


async def validation_error_response(
    _request: Request, error: RequestValidationError
) -> JSONResponse:
    """422 naming each field's location, message and type.

    Unlike FastAPI's default, the offending input is not echoed back: it may be huge,
    nested deep enough to exhaust the JSON encoder's recursion, or secret.
    """
    detail = [
        {"loc": list(item["loc"]), "msg": item["msg"], "type": item["type"]}
        for item in error.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def api_from_environment() -> FastAPI:
    """Factory for uvicorn workers: settings of the profile named by APP_ENV."""
    return create_api(load_settings())


def serve(settings: Settings, host: str, port: int) -> None:
    """Run the API under uvicorn until interrupted."""
    # Each uvicorn worker builds the app itself, from the profile in the environment.
    os.environ[PROFILE_VARIABLE] = settings.profile.value
    if settings.metrics.enabled and settings.api.workers > 1:
        # Each worker process counts its own requests and /metrics reaches one of them: they
        # write their counts to files in this folder (emptied now), which the one asked adds
        # up. Workers start as new interpreters, after this is set. Only counters and
        # histograms: nothing to mark dead when uvicorn replaces a worker.
        use_multiprocess_dir(settings.data_dir / METRICS_DIR / f"api-{port}")
    uvicorn.run(
        f"{__name__}:api_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=settings.api.workers,
        log_config=None,
    )
