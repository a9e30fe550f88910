"""Enqueue typed tasks and read their state.

One POST operation per typed task is generated from the registry the worker uses, so
adding a task adds its endpoint, with its input model as the body and its output model
in the operation's ``x-result-schema``.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from celery import states
from celery.result import AsyncResult
from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from kombu.exceptions import OperationalError
from pydantic import BaseModel, SecretStr
from starlette.concurrency import run_in_threadpool

from ...config import Profile, Settings
from ...payload_size import PayloadTooLargeError
from ...tasks import NO_RESULT_NOTE, PENDING_NOTE
from ...tasks.typed import TypedTask
from ..deps import CeleryDep, SettingsDep, api_key_guard
from ..schemas import ERROR_RESPONSES, Problem, TaskAccepted, TaskError, TaskStatus

STATUS_ROUTE = "task_status"


def task_router(tasks: dict[str, TypedTask[Any, Any]], api_key: SecretStr | None) -> APIRouter:
    """The /tasks routes for these typed tasks, behind the API key when one is set."""
    # The schema documents the key (and its 401) only when the key is enforced. "is not
    # None": an empty key (settings turn "" into None) must lock the routes, not open them.
    dependencies = [Depends(api_key_guard(api_key))] if api_key is not None else []
    router = APIRouter(prefix="/tasks", tags=["tasks"], dependencies=dependencies)
    auth_error: dict[int | str, dict[str, Any]] = (
        {401: {"model": Problem, "description": "Missing or wrong X-API-Key"}}
        if api_key is not None
        else {}
    )
    for name, task in sorted(tasks.items()):
        router.add_api_route(
            f"/{name}",
            enqueue_endpoint(task),
            methods=["POST"],
            status_code=status.HTTP_202_ACCEPTED,
            response_model=TaskAccepted,
            responses={**ERROR_RESPONSES, **auth_error},
            name=f"submit_{name}",
            summary=f"Queue {name}",
            description=(task.__doc__ or "").strip(),
            openapi_extra={"x-result-schema": task.output_model.model_json_schema()},
        )
    router.add_api_route("/{task_name}", unknown_task, methods=["POST"], include_in_schema=False)
    router.add_api_route(
        "/{task_id}",
        task_status,
        methods=["GET"],
        response_model=TaskStatus,
        responses=auth_error,
        name=STATUS_ROUTE,
    )
    return router


def enqueue_endpoint(task: TypedTask[Any, Any]) -> Any:
    """A route function whose body parameter is the task's input model."""

    async def enqueue(
        payload: BaseModel, request: Request, response: Response, settings: SettingsDep
    ) -> TaskAccepted:
        try:
            # Publishing talks to the broker synchronously: keep it off the event loop.
            result = await run_in_threadpool(
                task.apply_async, (payload,), retry_policy=publish_retry_policy(settings)
            )
        # Refused before anything was sent. A body within api.max_body_bytes (1 MiB by
        # default) may still carry more than tasks.max_payload_bytes (256 KiB): 413 too.
        # The number: starlette renamed its constant within the versions this project
        # allows, and the old name now warns (an error under the tests' filterwarnings).
        except PayloadTooLargeError as error:
            raise HTTPException(413, str(error)) from None
        # Celery's Redis result backend raises RuntimeError once it gives up reconnecting.
        except (OperationalError, RuntimeError) as error:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, "broker or result backend unavailable"
            ) from error
        url = str(request.url_for(STATUS_ROUTE, task_id=result.id))
        response.headers["Location"] = url
        note = NO_RESULT_NOTE if task.ignore_result else None
        return TaskAccepted(task_id=result.id, status_url=url, note=note)

    # FastAPI reads the body model from the annotation; each task brings its own.
    enqueue.__annotations__ = {**enqueue.__annotations__, "payload": task.input_model}
    return enqueue


def publish_retry_policy(settings: Settings) -> dict[str, Any]:
    """How a submit retries an unreachable broker: briefly, as the client will retry a 503.

    Celery's default policy (``task_publish_retry_policy``, for publishes from workers)
    keeps a request waiting for seconds before the 503.
    """
    return {
        "max_retries": settings.api.publish_retries,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.5,
    }


def unknown_task(task_name: str) -> None:
    """Any name the registry does not know."""
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown task {task_name!r}")


def task_status(task_id: UUID, celery: CeleryDep, settings: SettingsDep) -> TaskStatus:
    """A task's state, its typed result once it succeeded, why it failed or was revoked."""
    result = celery.AsyncResult(str(task_id))
    state = result.state
    if state == states.SUCCESS:
        return TaskStatus(task_id=result.id, state=state, result=_typed_result(celery, result))
    # REVOKED stores why (expired, revoked, terminated) as a TaskRevokedError.
    if state in (states.FAILURE, states.REVOKED):
        error = result.result
        show_traceback = settings.profile is not Profile.PRODUCTION
        return TaskStatus(
            task_id=result.id,
            state=state,
            error=TaskError(
                type=type(error).__name__,
                message=str(error),
                traceback=result.traceback if show_traceback else None,
            ),
        )
    if state == states.PENDING:
        return TaskStatus(task_id=result.id, state=state, note=PENDING_NOTE)
    return TaskStatus(task_id=result.id, state=state)


def _typed_result(celery: CeleryDep, result: AsyncResult[Any]) -> dict[str, Any]:
    """The stored result, validated by its task's output model when the store names it.

    Only ``results.extended`` stores the task name; without it, the JSON the output
    model wrote comes back as it is.
    """
    task = celery.tasks.get(result.name or "")
    if isinstance(task, TypedTask):
        return dict(task.output_model.model_validate(result.result).model_dump(mode="json"))
    return dict(result.result)  # type: ignore[arg-type]  # a result, not an exception
