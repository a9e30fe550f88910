"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ...health import dependency_checks
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
    checks = dependency_checks(celery, settings.api.readiness_timeout)
    ready = all(outcome == "ok" for outcome in checks.values())
    body = Readiness(status="ready" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
