"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ...celery_app import ProjectCelery
from ...config import Settings
from ...resources import results_redis
from ..deps import CeleryDep, SettingsDep
from ..schemas import Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: answers without any I/O."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def readyz(celery: CeleryDep, settings: SettingsDep) -> JSONResponse:
    """Readiness: 200 when the broker and the result backend answer, else 503 naming them."""
    timeout = settings.api.readiness_timeout
    checks = {
        "broker": broker_status(celery, timeout),
        "results": results_status(settings, timeout),
    }
    ready = all(outcome == "ok" for outcome in checks.values())
    body = Readiness(status="ready" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


def broker_status(celery: ProjectCelery, timeout: float) -> str:
    """``ok``, or ``down: <error type>`` when the broker does not answer in time."""
    try:
        with celery.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, timeout=int(timeout) or 1)
    except Exception as error:  # any failure means down; its type says why
        return f"down: {type(error).__name__}"
    return "ok"


def results_status(settings: Settings, timeout: float) -> str:
    """``ok``, or ``down: <error type>`` when the result backend is unreachable."""
    try:
        if settings.results.is_redis:
            with results_redis(settings, timeout) as client:
                client.ping()
        elif not (settings.data_dir / "results").is_dir():
            raise FileNotFoundError(settings.data_dir / "results")
    except Exception as error:  # any failure means down; its type says why
        return f"down: {type(error).__name__}"
    return "ok"
