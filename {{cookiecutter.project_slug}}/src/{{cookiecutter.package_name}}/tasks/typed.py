"""Typed tasks: a Pydantic model in, a Pydantic model out, JSON on the wire.

Celery's ``pydantic=True`` does the runtime work: a caller's model is dumped to JSON
before publishing, and the worker validates the message against the model before
the task body runs. What Celery does not give is the static side: with the
celery-types stubs, ``@shared_task(base=...)`` comes out as ``Task[Any, Any]`` and
mypy stops checking calls. ``typed_task`` keeps the signature, and ``TypedTask``
types each call path by what really arrives: ``delay``, ``apply_async``, ``s`` and
``si`` take the input model only, ``delay().get()`` returns the output model, and
what comes back as a JSON dict (``apply().get()``, canvas results) is typed ``Any``.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, overload

from celery import Celery, Task, shared_task, states
from celery.canvas import Signature
from celery.result import AsyncResult, EagerResult, GroupResult, ResultBase
from pydantic import BaseModel, ConfigDict, ValidationError

from ..config import ConfigError

InT = TypeVar("InT", bound=BaseModel)
OutT = TypeVar("OutT", bound=BaseModel)


class TaskModel(BaseModel):
    """Base for task inputs and outputs: unknown fields are refused, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskInputError(ValueError):
    """A task's input does not match its model; the message names each problem."""


def describe_errors(error: ValidationError) -> list[str]:
    """One ``field: problem`` line per error, without echoing the input back."""
    return [
        f"{'.'.join(str(part) for part in item['loc']) or '(input)'}: {item['msg']}"
        for item in error.errors(include_input=False, include_url=False)
    ]


class ModelResult(AsyncResult[OutT]):
    """An AsyncResult whose ``get()`` returns the task's output model.

    As with any AsyncResult, ``get(propagate=False)`` returns the exception of a task
    that failed instead of raising it; that call is typed ``OutT | BaseException``.
    """

    def __init__(self, task_id: str, output_model: type[OutT], **kwargs: Any) -> None:
        super().__init__(task_id, **kwargs)
        self.output_model = output_model

    @overload  # type: ignore[override]  # the stubs type get() as OutT whatever propagate is
    def get(
        self, timeout: float | None = None, propagate: Literal[True] = True, **options: Any
    ) -> OutT: ...

    @overload
    def get(
        self, timeout: float | None = None, propagate: bool = True, **options: Any
    ) -> OutT | BaseException: ...

    def get(
        self, timeout: float | None = None, propagate: bool = True, **options: Any
    ) -> OutT | BaseException:
        """Wait for the result; a success comes back validated into the output model."""
        value = super().get(timeout, propagate, **options)
        if self.state != states.SUCCESS:  # the exception, returned as propagate=False asks
            return value
        return self.output_model.model_validate(value)


class TypedTask(Task[[InT], OutT]):
    """Base class of every typed task; carries its input and output models."""

    input_model: type[InT]
    output_model: type[OutT]

    def __call__(self, payload: InT) -> OutT:
        """Run in this process; a direct call returns the model, a worker gets JSON."""
        # Celery's pydantic wrapper dumps the returned model for the result backend.
        # Inside a worker the tracer has pushed the message's request (called_directly
        # is False) and wants that dump; a direct caller wants the model back.
        called_directly = bool(self.request.called_directly)
        returned = super().__call__(self.validated(payload))
        if called_directly:
            return self.output_model.model_validate(returned)
        return returned

    def validated(self, payload: Any) -> InT:
        """The payload as the input model, or TaskInputError naming each bad field."""
        try:
            return self.input_model.model_validate(payload)
        except ValidationError as error:
            # Celery stores a failure as its exception's type and args; ValidationError
            # has no args, so the caller would learn nothing about what was wrong.
            problems = "; ".join(describe_errors(error))
            raise TaskInputError(f"invalid input for {short_name(self)}: {problems}") from None

    def AsyncResult(  # noqa: N802 - Celery's name
        self,
        task_id: str,
        *,
        backend: Any | None = None,
        app: Any | None = None,
        parent: ResultBase | None = None,
        **kwargs: Any,
    ) -> ModelResult[OutT]:
        """Results of this task, typed by its output model."""
        return ModelResult(
            task_id,
            self.output_model,
            backend=backend or self.backend,
            app=app or self.app,
            parent=parent,
            task_name=self.name,
            **kwargs,
        )

    def group_outputs(self, result: GroupResult, timeout: float | None = None) -> list[OutT]:
        """The output model of each of a group's calls of this task, in order, on every backend.

        ``GroupResult.get()`` is untyped and differs by result backend: where Celery
        joins by calling each child's ``get()`` (the local file backend) it returns
        models, where the backend reads all results at once (Redis) it returns the
        stored JSON dicts. Asking this task for each child's result gives the model
        either way. ``timeout`` applies to each child.
        """
        return [self.AsyncResult(child.id).get(timeout=timeout) for child in result.results or ()]

    @overload
    def s(self) -> Signature[Any]: ...

    @overload
    def s(self, payload: InT, /) -> Signature[Any]: ...

    def s(self, *payload: InT) -> Signature[Any]:
        """A signature for canvases; ``s(model)`` is checked like ``delay``.

        ``s()`` is the partial form: a chord body or a later chain step, whose input
        is the previous result Celery prepends at run time, so it cannot be checked.
        The model goes in as JSON: a signature travels inside other messages (a
        chain's later steps, errbacks), where Celery does not dump models itself.
        Typed ``Signature[Any]``: its ``apply().get()`` returns the JSON dict and a
        canvas's results are Celery's, not models (README, "Adding a typed task").
        """
        return self.signature(tuple(item.model_dump(mode="json") for item in payload))

    def si(self, payload: InT) -> Signature[Any]:
        """An immutable signature: it ignores the previous result in a chain or chord."""
        return self.signature((payload.model_dump(mode="json"),), immutable=True)

    if TYPE_CHECKING:
        # Typing only: the stubs type these from Task's parameters (any arguments for
        # apply_async, results typed as if get() always returned the model), so they are
        # declared again with what really arrives. The runtime is Celery's, but for
        # apply_async's below.

        def delay(self, payload: InT) -> ModelResult[OutT]:
            """Publish; the result's ``get()`` returns the output model."""

        def apply_async(  # type: ignore[override]  # narrower: the input model
            self, args: tuple[InT], kwargs: None = None, **options: Any
        ) -> ModelResult[OutT]:
            """Publish with options (countdown, queue, link_error, ...)."""

        def apply(self, *args: Any, **options: Any) -> EagerResult[Any]:
            """Run here, now, as a worker would; ``get()`` returns the stored JSON dict.

            Untyped, like a message from another producer: tests use it to send raw input.
            """

    else:

        def apply_async(self, args=None, kwargs=None, **options):
            """Publish; ``delay`` and canvases come here. Typed above, for callers.

            The input model goes out as its JSON dict, dumped here once. Celery's generic
            dump would also validate the dump again, on every call, to check that it
            rebuilds the same model: about 70 µs a publish (docs/performance.md), for what
            the property tests already prove for every typed task's input model
            (tests/property/test_models.py). Anything else, a subclass of the model
            included, takes Celery's path.
            """
            if args and type(args[0]) is self.input_model:
                args = (args[0].model_dump(mode="json"), *args[1:])
            return super().apply_async(args, kwargs, **options)


def typed_task(
    **options: Any,
) -> Callable[[Callable[[InT], OutT]], TypedTask[InT, OutT]]:
    """Register a function ``(Input) -> Output`` as a typed Celery task.

    ``options`` are Celery task options (``soft_time_limit``, ``autoretry_for``, ...).
    """

    def register(function: Callable[[InT], OutT]) -> TypedTask[InT, OutT]:
        input_model, output_model = models_of(function)
        # bind=False: the function takes its model only; it also selects the stubs'
        # overload for a base class, so no cast is needed.
        task: TypedTask[InT, OutT] = shared_task(
            base=TypedTask,
            bind=False,
            pydantic=True,
            input_model=input_model,
            output_model=output_model,
            **options,
        )(function)
        return task

    return register


def models_of(function: Callable[..., Any]) -> tuple[type[Any], type[Any]]:
    """The input and output models of a task function; TypeError if it has other shapes."""
    where = f"{function.__module__}.{function.__qualname__}"
    hints = typing.get_type_hints(function)
    parameters = list(inspect.signature(function).parameters)
    input_model = hints.get(parameters[0]) if len(parameters) == 1 else None
    output_model = hints.get("return")
    for role, model in (("its one parameter", input_model), ("its return", output_model)):
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(
                f"typed task {where}: {role} must be annotated with a pydantic model, "
                "e.g. def task(payload: MyInput) -> MyOutput"
            )
    return cast(type[Any], input_model), cast(type[Any], output_model)


def short_name(task: Task[Any, Any]) -> str:
    """The name callers use: the function name without its module path."""
    return task.name.rsplit(".", 1)[-1]


def typed_tasks(app: Celery) -> dict[str, TypedTask[Any, Any]]:
    """Every typed task the app knows, by short name (the registry the CLI and API use).

    ConfigError if two share a short name: callers could reach only one of them.
    """
    registry: dict[str, TypedTask[Any, Any]] = {}
    for task in app.tasks.values():
        if not isinstance(task, TypedTask):
            continue
        name = short_name(task)
        if name in registry:
            first, second = sorted((registry[name].name, task.name))
            raise ConfigError(
                f"typed tasks {first} and {second} are both {name!r} to the CLI and API; "
                "rename one of the functions"
            )
        registry[name] = task
    return registry
