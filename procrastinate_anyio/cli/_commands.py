"""The CLI's commands: ``defer``, ``schema``, ``healthchecks``, ``worker``,
``shell``, ``move-from-procrastinate``.

Each takes the parsed arguments and returns the exit code; an error the
operator can fix is raised as :class:`CLIError` (or a
``ProcrastinateException``) for ``main()`` to print.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shlex
import sys
from typing import TYPE_CHECKING, Any, Final

import anyio

from .._app import App, load_app
from .._exceptions import (
    AlreadyEnqueued,
    ConnectorException,
    LoadFromPathError,
    TaskNotFound,
)
from .._schema import SchemaManager
from ..worker._options import WorkerOptions
from ._errors import EXIT_ERROR, CLIError, one_line
from ._flags import worker_options
from ._shell import Shell

if TYPE_CHECKING:
    import argparse

    from ..connectors._types import ProcrastinateMove

logger = logging.getLogger("procrastinate_anyio.cli")

APP_ENV_VAR: Final = "PROCRASTINATE_ANYIO_APP"
PROCRASTINATE_APP_ENV_VAR: Final = "PROCRASTINATE_APP"
"""Procrastinate's variable, read when ours is not set."""


def echo(text: str, *, err: bool = False) -> None:
    """Print a line for the operator, on stdout (or stderr)."""
    print(text, file=sys.stderr if err else sys.stdout)


def _load_app(args: argparse.Namespace) -> App:
    path = (
        args.app
        or os.environ.get(APP_ENV_VAR)
        or os.environ.get(PROCRASTINATE_APP_ENV_VAR)
    )
    if not path:
        raise CLIError(
            f"no app given: pass --app dotted.path.to.app or set {APP_ENV_VAR}"
        )
    # As with `python -m`, so that the console script finds the project's
    # modules when run from its folder (uvicorn does the same).
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    app = load_app(path)
    logger.debug("Loaded the app %s", path, extra={"action": "load_app", "path": path})
    return app


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise CLIError(f"JSON_ARGS is not valid JSON ({exc}): {text[:60]!r}") from None
    if not isinstance(value, dict):
        kind = type(value).__name__
        raise CLIError(
            f"JSON_ARGS must be a JSON object like '{{\"a\": 1}}', not {kind}"
        )
    return value


def _aware_datetime(text: str) -> datetime.datetime:
    example = "2030-01-31T12:00:00+00:00"
    try:
        # Python 3.10's fromisoformat does not read the "Z" suffix.
        value = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CLIError(
            f"--at expects an ISO 8601 datetime like {example}: {text!r}"
        ) from None
    if value.utcoffset() is None:
        raise CLIError(f"--at needs a timezone, like {example} or ...Z: {text!r}")
    return value


def cmd_defer(args: argparse.Namespace) -> int:
    """Defer one job of a task."""
    arguments = _json_object(args.json_args)
    schedule_at = None if args.at is None else _aware_datetime(args.at)
    app = _load_app(args)
    app.perform_import_paths()
    # Locks not given keep the task's own (None would clear them).
    locks = {
        name: value
        for name, value in (("lock", args.lock), ("queueing_lock", args.queueing_lock))
        if value is not None
    }
    try:
        deferrer = app.configure_task(
            args.task,
            allow_unknown=args.unknown,
            **locks,
            schedule_at=schedule_at,
            schedule_in=None if args.in_ is None else {"seconds": args.in_},
            priority=args.priority,
            queue=args.queue,
        )
    except TaskNotFound as exc:
        raise CLIError(f"{exc} (pass --unknown to defer it anyway)") from exc
    except (ValueError, TypeError, OverflowError) as exc:
        raise CLIError(f"invalid option: {exc}") from exc
    task_name = deferrer.template.task_name

    async def defer() -> int:
        async with app.open_async():
            return await deferrer.defer_async(**arguments)

    try:
        job_id = anyio.run(defer, backend="asyncio")
    except AlreadyEnqueued as exc:
        if not args.ignore_already_enqueued:
            raise
        extra: dict[str, Any] = {
            "action": "job_already_enqueued",
            "task_name": task_name,
        }
        logger.info("Not deferred: %s", exc, extra=extra)
        lock = deferrer.template.queueing_lock
        echo(f"Not deferred: a job with queueing lock {lock!r} is already waiting")
        return 0
    extra = {"action": "defer_job", "job_id": job_id, "task_name": task_name}
    logger.info("Deferred job %s", job_id, extra=extra)
    call = ", ".join(f"{key}={value!r}" for key, value in arguments.items())
    echo(f"Deferred {task_name}[{job_id}]({call})")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    """Apply the schema, or print it or the folder of its migrations."""
    if args.schema_action == "read":
        echo(SchemaManager.get_schema().rstrip("\n"))
        return 0
    if args.schema_action == "migrations_path":
        echo(str(SchemaManager.get_migrations_path()))
        return 0
    app = _load_app(args)

    async def apply() -> list[str]:
        async with app.open_async():
            return await app.schema_manager.apply_schema_async()

    applied = anyio.run(apply, backend="asyncio")
    extra = {"action": "apply_schema", "applied": applied}
    logger.info("Applied %d migration(s)", len(applied), extra=extra)
    if applied:
        echo(f"Applied {len(applied)} migration(s): {', '.join(applied)}")
    else:
        echo("The schema is up to date: nothing to apply")
    return 0


def cmd_move_from_procrastinate(args: argparse.Namespace) -> int:
    """Move Procrastinate's waiting jobs and periodic ticks into our tables."""
    app = _load_app(args)

    async def move() -> ProcrastinateMove:
        async with app.open_async():
            return await app.job_manager.move_from_procrastinate_async(
                dry_run=args.dry_run,
                force=args.force,
                worker_timeout=args.worker_timeout,
            )

    report = anyio.run(move, backend="asyncio")
    for skip in report.skipped:
        echo(f"Skipped Procrastinate job {skip.job_id}: {skip.reason}")
    extra = {
        "action": "move_from_procrastinate",
        "dry_run": report.dry_run,
        "moved": len(report.moved),
        "skipped": len(report.skipped),
        "periodic_ticks": report.periodic_ticks,
    }
    logger.info("%s", report.summary(), extra=extra)
    echo(report.summary())
    return 0


def _check(name: str, ok: bool, detail: str) -> None:
    extra = {"action": "healthcheck", "check": name, "ok": ok}
    logger.info("Check %s: %s", name, "OK" if ok else "FAILED", extra=extra)
    echo(f"{name}: {'OK' if ok else 'FAILED'} - {one_line(detail)}")


def cmd_healthchecks(args: argparse.Namespace) -> int:
    """Check the app, the database and the schema; exit 1 if one fails."""
    try:
        app = _load_app(args)
        app.perform_import_paths()
    except LoadFromPathError as exc:
        _check("app", False, str(exc))
        return EXIT_ERROR
    _check("app", True, f"{len(app.tasks)} task(s)")

    async def check_database() -> bool:
        try:
            async with app.open_async():
                _check("database", True, "connected")
                try:
                    status = await app.schema_manager.check_schema_async()
                except ConnectorException as exc:
                    _check("schema", False, str(exc))
                    return False
        except ConnectorException as exc:
            _check("database", False, str(exc))
            return False
        _check("schema", status.is_current, status.describe())
        return status.is_current

    return 0 if anyio.run(check_database, backend="asyncio") else EXIT_ERROR


def cmd_worker(args: argparse.Namespace) -> int:
    """Run a worker until it is stopped (or, one-shot, out of jobs)."""
    options = worker_options(args, os.environ)
    backend = options.pop("backend", "asyncio")
    app = _load_app(args)
    try:
        # Check now, so that a bad value in worker_defaults too is one clear line.
        WorkerOptions(**{**app.worker_defaults, **options})
    except (ValueError, TypeError) as exc:
        raise CLIError(f"invalid worker option: {exc}") from exc
    extra = {"action": "start_worker", "backend": backend, "options": options}
    logger.info("Starting a worker on %s", backend, extra=extra)
    app.run_worker_sync(backend=backend, **options)
    return 0


def cmd_shell(args: argparse.Namespace) -> int:
    """Run the interactive shell, or one shell command."""
    app = _load_app(args)
    with app.open():
        shell = Shell(app.job_manager)
        if args.shell_command:
            shell.onecmd(shlex.join(args.shell_command))
            return EXIT_ERROR if shell.failed else 0
        shell.cmdloop()
    return 0
