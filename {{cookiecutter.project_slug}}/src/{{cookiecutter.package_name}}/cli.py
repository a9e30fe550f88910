"""Command line: run the services, submit typed tasks, check results, show configuration."""

from __future__ import annotations

import difflib
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import typer
from celery.result import AsyncResult
from celery.utils.nodenames import default_nodename, host_format
from kombu import Connection
from pydantic import ValidationError

from . import contract_docs, exporter, heartbeat, keda, periodic, profiling, tracing
from . import contracts as task_contracts
from .autoscale import autoscale_argv
from .celery_app import (
{%- if cookiecutter.broker == "rabbitmq" %}
    DEAD_LETTER_QUEUE,
{%- endif %}
    ProjectCelery,
    create_app,
    monitored_queues,
)
from .config import ConfigError, Settings, explain, load_settings
{%- if cookiecutter.broker == "rabbitmq" %}
from .dead_letters import DeadLetter, ReplayError, list_dead_letters, purge, replay
{%- endif %}
from .health import BrokerUnavailableError, answering_broker, dependency_checks
from .observability import configure_logging
from .payload_size import PayloadTooLargeError
from .queue_depth import (
{%- if cookiecutter.broker == "rabbitmq" %}
    queue_depth,
{%- endif %}
    queue_snapshots,
)
from .queues import queue_settings, worker_argv
from .tasks import PENDING_NOTE
from .tasks.typed import TypedTask, describe_errors, typed_tasks

app = typer.Typer(
    name="{{ cookiecutter.project_slug }}",
    help=__doc__,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Where a reloading worker watches for changes: this package's code and profile files.
PACKAGE_DIR = Path(__file__).resolve().parent

ProfileOption = Annotated[
    str | None,
    typer.Option("--profile", "-p", help="Configuration profile; defaults to $APP_ENV or local."),
]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one error line to stderr and return the exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def config_failure(error: ConfigError) -> typer.Exit:
    """Print one error line per configuration problem and return the exit to raise."""
    for problem in str(error).splitlines():
        typer.echo(f"error: {problem}", err=True)
    return typer.Exit(2)


def settings_for(profile: str | None) -> Settings:
    """Load settings or exit with the configuration problem."""
    try:
        return load_settings(profile)
    except ConfigError as error:
        raise config_failure(error) from None


def app_for(profile: str | None) -> ProjectCelery:
    """The Celery app of a profile, with logging configured."""
    settings = settings_for(profile)
    configure_logging(settings.log)
    try:
        return create_app(settings)
    except ConfigError as error:
        raise config_failure(error) from None


def find_task(celery: ProjectCelery, name: str) -> TypedTask[Any, Any]:
    """A typed task by short name, or exit listing the known names."""
    tasks = typed_tasks(celery)
    if name not in tasks:
        known = ", ".join(sorted(tasks))
        raise fail(f"unknown task {name!r}; known tasks: {known}")
    return tasks[name]


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(
    context: typer.Context,
    profile: ProfileOption = None,
    queues: Annotated[
        str | None, typer.Option(help="Comma-separated queues; defaults to worker.queues.")
    ] = None,
    queue: Annotated[
        str | None,
        typer.Option(
            help="Consume this one queue with its own settings (worker.<queue>, tasks.<queue>)."
        ),
    ] = None,
    concurrency: Annotated[int | None, typer.Option(min=1)] = None,
    reload: Annotated[
        bool,
        typer.Option(
            "--reload", help="Restart when a file of the package changes (development only)."
        ),
    ] = False,
) -> None:
    """Start a worker for the active profile: every queue of worker.queues, or one --queue.

    Options after ``--`` go to ``celery worker`` as they are, e.g.
    ``-- --hostname=w1@%h --include=extra.tasks``.
    """
    celery = app_for(profile)
    settings = celery.settings
    argv = [
        "worker",
        f"--loglevel={settings.log.level}",
        *queue_options(settings, queue, queues, concurrency),
    ]
    argv += autoscale_argv(settings)
    if settings.broker.scheme == "filesystem":
        # The filesystem transport has no broadcast: skip the cluster chatter.
        argv += ["--without-mingle", "--without-gossip"]
    if reload:
        run_reloading(profile, [*argv, *context.args])
        return
    run_worker(celery, [*argv, *context.args])


def run_worker(celery: ProjectCelery, argv: list[str]) -> None:
    """Run ``celery worker``; a problem its start-up finds (a metrics port in use) is one line."""
    try:
        celery.worker_main(argv)
    except ConfigError as error:
        raise config_failure(error) from None


def queue_options(
    settings: Settings, queue: str | None, queues: str | None, concurrency: int | None
) -> list[str]:
    """``celery worker`` options for one queue's worker, or for one consuming several."""
    if queue is None:
        worker = settings.worker
        return [
            f"--queues={queues or ','.join(worker.queues)}",
            f"--concurrency={concurrency or worker.concurrency}",
            f"--pool={worker.pool}",
        ]
    if queues is not None:
        raise fail("give --queue (one queue, its own settings) or --queues, not both")
    try:
        options = worker_argv(queue_settings(settings, queue))
    except ConfigError as error:
        raise config_failure(error) from None
    # Last wins: --concurrency on the command line beats the queue's setting.
    return [*options, f"--concurrency={concurrency}"] if concurrency else options


def run_reloading(profile: str | None, argv: list[str]) -> None:
    """Run the worker in a child process, restarted on every change under the package.

    A worker imports its tasks once, at start-up: a new or edited task only exists
    for a new process. watchfiles stops the child with SIGINT (a warm shutdown) and
    starts a fresh interpreter, which imports the changed code.
    """
    try:
        from watchfiles import run_process  # development dependency
    except ImportError:
        raise fail("--reload needs watchfiles, a development dependency: run uv sync") from None
    # An idle worker's warm shutdown takes a few seconds: give it time to finish
    # (and running tasks with it) before watchfiles falls back to SIGKILL.
    run_process(PACKAGE_DIR, target=start_worker, args=(profile, argv), sigint_timeout=30)


def start_worker(profile: str | None, argv: list[str]) -> None:
    """The reloaded child: load the settings and run the worker in this process."""
    run_worker(app_for(profile), argv)


@app.command()
def submit(
    task: Annotated[str, typer.Argument(help="Task name, e.g. process_data.")],
    payload: Annotated[str, typer.Option("--json", help="The task input as a JSON object.")],
    wait: Annotated[bool, typer.Option(help="Wait for the result and print it.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 60,
    profile: ProfileOption = None,
) -> None:
    """Validate the input, enqueue the task, print its id (or its result with --wait)."""
    celery = app_for(profile)
    typed = find_task(celery, task)
    try:
        model = typed.input_model.model_validate_json(payload)
    except ValidationError as error:
        raise fail(
            f"invalid input for {task} (nothing was enqueued):\n  "
            + "\n  ".join(describe_errors(error))
        ) from None
    if wait and typed.ignore_result:
        raise fail(
            f"{task} stores no result (ignore_result), so --wait cannot wait for it; "
            "nothing was queued (submit it without --wait)"
        )
    tracing.start(celery.settings.tracing)  # off by default: the publish span starts the trace
    try:
        result = typed.delay(model)
    except PayloadTooLargeError as error:
        raise fail(f"{error} (nothing was queued)") from None
    if not wait:
        typer.echo(result.id)
        if typed.ignore_result:
            typer.echo(f"note: {task} stores no result; status will say PENDING", err=True)
        return
    try:
        output = result.get(timeout=timeout)
    except Exception as error:  # the task's own failure, re-raised by Celery
        raise fail(f"task {result.id} failed: {type(error).__name__}: {error}", code=1) from None
    typer.echo(output.model_dump_json())


@app.command()
def status(
    task_id: Annotated[str, typer.Argument(help="The id printed by submit.")],
    profile: ProfileOption = None,
) -> None:
    """Print a task's state, and its result once it has one, as JSON."""
    # Celery answers PENDING for any id it has never seen, so a typo would look like
    # a queued task; task ids are UUIDs (the API refuses other ids with 422 as well).
    try:
        UUID(task_id)
    except ValueError:
        raise fail(f"task id {task_id!r} is not a UUID (submit prints one)") from None
    celery = app_for(profile)
    result: AsyncResult[Any] = celery.AsyncResult(task_id)
    report: dict[str, Any] = {"task_id": task_id, "state": result.state}
    if result.state == "PENDING":
        # The store knows nothing of the id: queued, unknown, or a task that stores no result.
        report["note"] = PENDING_NOTE
    elif result.successful():
        report["result"] = result.result
    # str(): the stubs list the states a result can have, without REVOKED. For it
    # Celery stores why (expired, revoked, terminated), never the task's data.
    elif result.failed() or str(result.state) == "REVOKED":
        report["error"] = f"{type(result.result).__name__}: {result.result}"
    typer.echo(json.dumps(report))


@app.command()
def config(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    profile: ProfileOption = None,
) -> None:
    """Show the effective configuration, secrets masked, with each value's source."""
    rows = explain(settings_for(profile))
    if as_json:
        typer.echo(
            json.dumps({row.key: {"value": row.value, "source": row.source} for row in rows})
        )
        return
    width = max(len(row.key) for row in rows)
    for row in rows:
        typer.echo(f"{row.key:<{width}}  {json.dumps(row.value):<40}  {row.source}")


@app.command()
def beat(profile: ProfileOption = None) -> None:
    """Start the periodic-task scheduler; with Redis results, extra beats wait as standbys."""
    celery = app_for(profile)
    argv = ["beat", f"--loglevel={celery.settings.log.level}"]
    if not periodic.uses_redbeat(celery.settings):  # RedBeat keeps it all in Redis
        # The schedule file records each entry's last run; it lives under data_dir, the one
        # folder a container's non-root user can write, not in the working directory.
        schedule = celery.settings.data_dir / periodic.SCHEDULE_FILE
        schedule.parent.mkdir(parents=True, exist_ok=True)
        argv.append(f"--schedule={schedule}")
    celery.start(argv)


@app.command()
def check(
    profile: ProfileOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each service.")] = 3,
) -> None:
    """Exit 0 when the broker and result backend answer, 1 naming what is down."""
    checks = dependency_checks(app_for(profile), timeout)
    typer.echo(json.dumps(checks))
    if any(outcome != "ok" for outcome in checks.values()):
        raise typer.Exit(1)


@app.command()
def probe(
    liveness: Annotated[
        bool, typer.Option("--liveness", help="Fail only when the worker is wedged.")
    ] = False,
    readiness: Annotated[
        bool, typer.Option("--readiness", help="Fail while the worker cannot take tasks.")
    ] = False,
    node: Annotated[
        str | None,
        typer.Option(help="The worker's --hostname (%h allowed); defaults to celery@<host>."),
    ] = None,
    profile: ProfileOption = None,
) -> None:
    """Exit 0 when this machine's worker is live or ready, 1 saying why not.

    Reads the worker's heartbeat file in data_dir: no broker round trip, so it answers
    in milliseconds and a broker blip fails readiness only.
    """
    if liveness == readiness:
        raise fail("pass one of --liveness or --readiness")
    settings = settings_for(profile)
    # The name the worker gives itself unless told otherwise (Celery's own rule).
    name = host_format(default_nodename(node or ""))
    path = heartbeat.heartbeat_path(settings.data_dir, name)
    try:
        beat = heartbeat.read_beat(path)
    except ValueError as error:
        raise fail(str(error), code=1) from None
    check = heartbeat.liveness if liveness else heartbeat.readiness
    verdict = check(beat, time.time(), settings.heartbeat.max_age)
    others = heartbeat.known_nodes(settings.data_dir) if beat is None else []
    hint = f"; heartbeats here: {', '.join(others)} (pass --node)" if others else ""
    typer.echo(f"{verdict.reason}{hint} [{path}]", err=not verdict.ok)
    if not verdict.ok:
        raise typer.Exit(1)


@contextmanager
def connected(celery: ProjectCelery) -> Iterator[Connection]:
    """A broker connection for the block; exit naming the broker and the setting to fix
    when it does not answer within ``broker.connection_timeout``."""
    try:
        with answering_broker(celery) as connection:
            yield connection
    except BrokerUnavailableError as error:
        raise fail(str(error)) from None


@app.command()
def queues(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    profile: ProfileOption = None,
) -> None:
    """Show the messages in each queue, from the broker: waiting for a worker (ready),
    taken and not yet acknowledged (unacked, Redis) and consumers (RabbitMQ)."""
    celery = app_for(profile)
    watched = monitored_queues(celery.settings)
    with connected(celery) as connection:
        snapshots = queue_snapshots(connection, watched)
    if as_json:
        typer.echo(json.dumps([asdict(snapshot) for snapshot in snapshots]))
        return
    # Only the columns this broker can tell.
    columns = [
        column
        for column in ("queue", "ready", "unacked", "consumers")
        if any(getattr(snapshot, column) is not None for snapshot in snapshots)
    ]
    rows = [[str(getattr(snapshot, column)) for column in columns] for snapshot in snapshots]
    widths = [max(map(len, values)) for values in zip(columns, *rows, strict=True)]
    for row in [columns, *rows]:
        cells = (value.ljust(width) for value, width in zip(row, widths, strict=True))
        typer.echo("  ".join(cells).rstrip())


@app.command("exporter")
def serve_exporter(
    host: Annotated[str | None, typer.Option(help="Interface; defaults to exporter.host.")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port; defaults to exporter.port.")
    ] = None,
    profile: ProfileOption = None,
) -> None:
    """Serve the queue gauges for Prometheus on /metrics; one per deployment.

    Each scrape asks the broker (see README, Queue depth and dead letters).
    """
    celery = app_for(profile)
    settings = celery.settings.exporter
    host, port = host or settings.host, port or settings.port
    try:
        _server, thread = exporter.start(celery, host, port)
    except OSError as error:
        raise fail(
            f"cannot listen on {host}:{port} ({error}); free the port or set exporter.port"
        ) from None
    typer.echo(f"serving queue metrics on http://{host}:{port}/metrics", err=True)
    thread.join()
{%- if cookiecutter.broker == "rabbitmq" %}


@app.command("dead-letters")
def dead_letters(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable list.")] = False,
    replay_ids: Annotated[
        list[str] | None,
        typer.Option(
            "--replay", metavar="TASK_ID", help="Send this one back to its queue (repeatable)."
        ),
    ] = None,
    replay_all: Annotated[
        bool, typer.Option("--replay-all", help="Send every one back to its queue.")
    ] = False,
    purge_all: Annotated[
        bool, typer.Option("--purge", help="Delete every one for good (asks first).")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Purge without asking.")] = False,
    profile: ProfileOption = None,
) -> None:
    """List the messages RabbitMQ dead-lettered (they stay there), replay or purge them.

    A replay publishes a message to the queue it died in, as it was sent, and removes it
    from dead_letter once RabbitMQ confirmed the publish.
    """
    actions = sum([bool(replay_ids), replay_all, purge_all])
    if actions > 1:
        raise fail("give one of --replay, --replay-all or --purge")
    if as_json and actions:
        raise fail("--json goes with the list only, not with --replay, --replay-all or --purge")
    if yes and not purge_all:
        raise fail("--yes goes with --purge only")
    celery = app_for(profile)
    if purge_all:
        with connected(celery) as connection:
            count = queue_depth(connection, DEAD_LETTER_QUEUE)
        if not yes:
            typer.confirm(f"Delete the {count} messages in dead_letter for good?", abort=True)
        with connected(celery) as connection:
            typer.echo(f"purged {purge(connection)} messages from dead_letter")
        return
    if replay_ids or replay_all:
        replay_dead_letters(celery, set(replay_ids or ()))
        return
    with connected(celery) as connection:
        letters = list_dead_letters(connection)
    if as_json:
        rows = [asdict(letter) for letter in letters]
        for row, letter in zip(rows, letters, strict=True):
            row["first_death"] = letter.first_death.isoformat() if letter.first_death else None
        typer.echo(json.dumps(rows))
        return
    for letter in letters:
        typer.echo(describe_dead_letter(letter))
    typer.echo(f"{len(letters)} messages in dead_letter", err=True)


def replay_dead_letters(celery: ProjectCelery, task_ids: set[str]) -> None:
    """Replay the dead letters of ``task_ids`` (every one when empty), saying which."""
    if task_ids:
        with connected(celery) as connection:
            present = {letter.task_id for letter in list_dead_letters(connection)}
        missing = sorted(task_ids - present)
        if missing:
            raise fail(
                f"not in dead_letter: {', '.join(missing)} (nothing was replayed); "
                "`dead-letters` lists the task ids there"
            )

    def wanted(letter: DeadLetter) -> bool:
        return not task_ids or letter.task_id in task_ids

    try:
        with connected(celery) as connection:
            replayed = replay(connection, celery.settings, wanted)
    except ReplayError as error:
        raise fail(str(error)) from None
    for letter in replayed:
        typer.echo(f"replayed {letter.task_id} ({letter.task}) to {letter.queue}")
    typer.echo(f"{len(replayed)} messages replayed", err=True)


def describe_dead_letter(letter: DeadLetter) -> str:
    """One line: task id, task, where and why it died, when first."""
    first = letter.first_death.isoformat() if letter.first_death else "?"
    return (
        f"{letter.task_id}  {letter.task}  {letter.reason} in {letter.queue} "
        f"(first at {first}, {letter.deaths}x)"
    )
{%- else %}


@app.command("dead-letters")
def dead_letters(profile: ProfileOption = None) -> None:
    """RabbitMQ only: Redis has no dead-letter queue (see README, Queue depth and dead letters)."""
    settings_for(profile)
    raise fail(
        "Redis has no dead-letter queue: a task that failed for good is kept as a FAILURE "
        "result in the result backend (`status TASK_ID`) for results.expires seconds"
    )
{%- endif %}


@app.command()
def tasks(profile: ProfileOption = None) -> None:
    """List the typed tasks with their input schema."""
    for name, typed in sorted(typed_tasks(app_for(profile)).items()):
        schema = json.dumps(typed.input_model.model_json_schema())
        typer.echo(f"{name}  {schema}")


contracts_app = typer.Typer(
    help="Committed task contracts and reference: write them, check the code against them.",
    no_args_is_help=True,
)
app.add_typer(contracts_app, name="contracts")

ContractsDirOption = Annotated[Path, typer.Option("--dir", help="The committed contracts folder.")]
DocsDirOption = Annotated[
    Path, typer.Option("--docs-dir", help="The folder of the committed task reference.")
]


@contracts_app.command("dump")
def contracts_dump(
    folder: ContractsDirOption = task_contracts.CONTRACTS_DIR, profile: ProfileOption = None
) -> None:
    """Write each typed task's name, queue and input/output JSON Schema to the folder."""
    written = task_contracts.dump(task_contracts.current_contracts(app_for(profile)), folder)
    typer.echo(f"wrote {len(written)} contracts to {folder}/")


@contracts_app.command("docs")
def contracts_docs(
    docs_dir: DocsDirOption = contract_docs.DOCS_DIR, profile: ProfileOption = None
) -> None:
    """Write the task reference (docs/tasks.md); the same whatever the profile."""
    path = contract_docs.write(app_for(profile), docs_dir)
    typer.echo(f"wrote {path}")


@contracts_app.command("check")
def contracts_check(
    folder: ContractsDirOption = task_contracts.CONTRACTS_DIR,
    docs_dir: DocsDirOption = contract_docs.DOCS_DIR,
    profile: ProfileOption = None,
) -> None:
    """Exit 1 naming task, field and rule when the code breaks a committed contract,
    or naming the files when the committed contracts or task reference are not what
    ``contracts dump`` and ``contracts docs`` would write."""
    try:
        committed = task_contracts.load(folder)
    except task_contracts.ContractsMissingError as error:
        raise fail(str(error)) from None
    celery = app_for(profile)
    current = task_contracts.current_contracts(celery)
    changes = task_contracts.compare(committed, current)
    for change in changes:
        typer.echo(str(change), err=change.breaking)
    if any(change.breaking for change in changes):
        raise fail(
            "the code breaks committed task contracts; messages in flight or results "
            "being read would fail (see README, Task contracts)",
            code=1,
        )
    if changes:
        typer.echo(
            "compatible: the changes above keep messages in flight and results readable; "
            "record them as said below"
        )
    # Compatible changes must still be recorded: the committed files are the baseline
    # the next change is compared with.
    unrecorded = task_contracts.unrecorded(current, folder)
    if unrecorded:
        command = "uv run {{ cookiecutter.project_slug }} contracts dump"
        typer.echo(
            f"error: not recorded: {', '.join(unrecorded)}; run `{command}` and commit them",
            err=True,
        )
    stale = contract_docs.staleness(celery, docs_dir)
    if stale:
        command = "uv run {{ cookiecutter.project_slug }} contracts docs"
        typer.echo(f"error: {stale}; run `{command}` and commit it", err=True)
    if unrecorded or stale:
        raise typer.Exit(1)
    typer.echo("the code matches the committed contracts")


@app.command("profile")
def profile_task(
    task: Annotated[str, typer.Argument(help="Task name, e.g. render_thumbnail.")],
    payload: Annotated[str, typer.Option("--json", help="The task input as a JSON object.")],
    runs: Annotated[int, typer.Option(min=1, help="Calls to measure, after one warm-up.")] = 20,
    memory: Annotated[
        bool, typer.Option("--memory", help="Memory still held after the runs, by line.")
    ] = False,
    cpu: Annotated[bool, typer.Option("--cpu", help="Time by function (cProfile).")] = False,
    top: Annotated[int, typer.Option(min=1, help="Lines or functions to show.")] = 10,
    max_growth: Annotated[
        float,
        typer.Option(min=0, help="KiB more held per call above which --memory exits 1."),
    ] = 1.0,
    profile: ProfileOption = None,
) -> None:
    """Run a typed task --runs times in this process, eagerly (no broker, no worker),
    and report its time, its memory growth per call (--memory) or its hottest
    functions (--cpu). The task really runs: its side effects happen each time."""
    if memory and cpu:
        raise fail("pass --memory or --cpu, not both: each profiler would skew the other")
    celery = app_for(profile)
    typed = find_task(celery, task)
    try:
        model = typed.input_model.model_validate_json(payload)
    except ValidationError as error:
        raise fail(f"invalid input for {task}:\n  " + "\n  ".join(describe_errors(error))) from None
    # Tasks the task sends run here too, not on a broker.
    celery.conf.task_always_eager = True
    arguments = (model.model_dump(mode="json"),)
    # One INFO line per run would bury the report.
    logging.getLogger().setLevel(max(logging.WARNING, logging.getLogger().level))

    def call() -> object:
        return typed.apply(args=arguments, throw=True)

    if cpu:
        typer.echo(profiling.profile_cpu(call, runs, top))
        return
    if not memory:
        call()  # warm-up
        started = time.perf_counter()
        for _ in range(runs):
            call()
        per_run = (time.perf_counter() - started) / runs
        typer.echo(f"{task}: {runs} runs, {per_run * 1000:.1f} ms per run")
        return
    report = profiling.measure_memory(call, runs, top)
    size = profiling.size_text
    leaking = report.per_call > max_growth * 1024
    verdict = "above" if leaking else "within"
    typer.echo(
        f"{task}: {size(report.per_call)} more held per call ({size(report.growth)} after "
        f"{runs} runs, {report.tool}), {verdict} --max-growth {max_growth:g} KiB"
    )
    for site in report.sites:
        typer.echo(f"  {size(site.size):>10}  {site.blocks:>6} blocks  {site.where}")
    if leaking:
        raise fail(f"{task} holds more memory after every call: a leak, see the lines above", 1)


@app.command()
def kubernetes(
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 if the committed file differs."),
    ] = False,
    path: Annotated[Path, typer.Option("--file", help="The KEDA manifest.")] = keda.KEDA_FILE,
) -> None:
    """Write the KEDA manifest (a ScaledObject per queue) from worker.keda and
    worker.<queue>.keda: the defaults, then config/production.toml, never the environment."""
    try:
        text = keda.manifest(*keda.production_settings())
    except ConfigError as error:
        raise config_failure(error) from None
    command = "uv run {{ cookiecutter.project_slug }} kubernetes"
    if not check:
        if not path.parent.is_dir():
            raise fail(f"{path.parent} does not exist; run `{command}` in the project folder")
        path.write_text(text)
        typer.echo(f"wrote {path}")
        return
    if not path.is_file():
        raise fail(f"{path} does not exist; run `{command}` in the project folder", code=1)
    committed = path.read_text()
    if committed != text:
        diff = difflib.unified_diff(
            committed.splitlines(keepends=True),
            text.splitlines(keepends=True),
            f"{path} (committed)",
            f"{path} (from the settings)",
        )
        typer.echo("".join(diff), err=True, nl=False)
        raise fail(f"{path} differs from the settings; run `{command}` and commit it", code=1)
    typer.echo(f"{path} matches the settings")
{% if cookiecutter.include_api %}

@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Interface; defaults to api.host.")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port; defaults to api.port.")
    ] = None,
    profile: ProfileOption = None,
) -> None:
    """Serve the HTTP API with uvicorn for the active profile."""
    from .api.app import serve  # here, so the other commands never import FastAPI

    # The app is built here first so that a problem it finds at start-up (a periodic
    # entry's payload, two tasks with one name) is one line, not a uvicorn traceback.
    settings = app_for(profile).settings
    serve(settings, host=host or settings.api.host, port=port or settings.api.port)
{% endif %}

def main() -> None:
    """Console-script entry point."""
    app()
