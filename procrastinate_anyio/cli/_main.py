"""The operator CLI: ``procrastinate-anyio`` and ``python -m procrastinate_anyio``.

Commands: ``defer``, ``schema``, ``healthchecks``, ``worker``; see ``docs/cli.md``.

Errors the operator can fix (bad JSON, an unknown task, an unreachable
database, an app path that does not import...) print one ``Error: ...`` line
on stderr and exit 1; argparse's own usage errors exit 2. Anything else is a
bug and crashes with its traceback; with ``-vv`` the traceback of a handled
error is logged too.

Worker flags also come from ``PROCRASTINATE_ANYIO_WORKER_<FLAG>`` variables,
the command line winning (Procrastinate reads ``PROCRASTINATE_WORKER_*`` the
same way). Only the options the operator set reach ``run_worker_sync``, so
that ``App(worker_defaults=...)`` applies to the others.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import logging
import math
import os
import platform
import shlex
import sys
from typing import TYPE_CHECKING, Any, Final

import anyio
import attrs

from .._app import App, load_app
from .._exceptions import (
    AlreadyEnqueued,
    ConnectorException,
    LoadFromPathError,
    ProcrastinateException,
    TaskNotFound,
)
from .._schema import SchemaManager
from .._version import __version__
from ..worker._options import WorkerOptions
from ._shell import Shell

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

logger = logging.getLogger("procrastinate_anyio.cli")

PROG: Final = "procrastinate-anyio"
APP_ENV_VAR: Final = "PROCRASTINATE_ANYIO_APP"
WORKER_ENV_PREFIX: Final = "PROCRASTINATE_ANYIO_WORKER_"
EXIT_ERROR: Final = 1
EXIT_INTERRUPTED: Final = 130


class CLIError(Exception):
    """An error the operator can fix: printed as one line, exit code 1."""


def _echo(text: str, *, err: bool = False) -> None:
    print(text, file=sys.stderr if err else sys.stdout)


def _one_line(text: str) -> str:
    # libpq messages span lines ("...: Connection refused\n\tIs the server running...").
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


# Value parsers raise ArgumentTypeError: argparse makes it a usage error
# (exit 2), worker_options() a CLIError naming the environment variable.


def _number(
    convert: Callable[[str], float], expected: str, valid: Callable[[float], bool]
) -> Callable[[str], Any]:
    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and valid(value)):
            raise argparse.ArgumentTypeError(f"expected {expected}, not {text!r}")
        return value

    return parse


_positive_int = _number(int, "a positive integer", lambda value: value >= 1)
_seconds = _number(float, "a number of seconds", lambda value: True)
_seconds_over_0 = _number(float, "seconds > 0", lambda value: value > 0)


def _queue_list(text: str) -> list[str]:
    queues = [queue.strip() for queue in text.split(",") if queue.strip()]
    if not queues:
        raise argparse.ArgumentTypeError(f"expected queue names like a,b, not {text!r}")
    return queues


def _non_empty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a non-empty value")
    return text


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            expected = ", ".join(choices)
            raise argparse.ArgumentTypeError(
                f"expected one of {expected}, not {text!r}"
            )
        return text

    return parse


def _switch(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(
        f"expected 1/0, true/false, yes/no, on/off: {text!r}"
    )


@attrs.frozen
class _WorkerFlag:
    """A ``worker`` flag, the ``run_worker_sync`` keyword it sets, and how to
    read its value (``parse=None``: a switch that sets ``switch_value``)."""

    flags: tuple[str, ...]
    option: str
    help: str
    parse: Callable[[str], Any] | None = None
    metavar: str | None = None
    switch_value: bool = False

    @property
    def env_var(self) -> str:
        return WORKER_ENV_PREFIX + self.flags[-1].lstrip("-").replace("-", "_").upper()


# fmt: off
_WORKER_FLAGS: Final = (
    _WorkerFlag(("-q", "--queues"), "queues", "comma-separated queues to take jobs from (default: all)", _queue_list, "QUEUES"),
    _WorkerFlag(("-c", "--concurrency"), "concurrency", "how many jobs run at once", _positive_int, "N"),
    _WorkerFlag(("--backend",), "backend", "the event loop (default: asyncio)", _choice("asyncio", "trio"), "{asyncio,trio}"),
    _WorkerFlag(("-n", "--name"), "name", "the worker's name, in logs and the workers table", _non_empty, "NAME"),
    _WorkerFlag(("--one-shot",), "wait", "stop when no job is left, instead of waiting for new ones"),
    _WorkerFlag(("--shutdown-graceful-timeout",), "shutdown_graceful_timeout", "on shutdown, how long running jobs may take before they are cancelled", _seconds_over_0, "SECONDS"),
    _WorkerFlag(("--no-listen-notify",), "listen_notify", "do not LISTEN for new jobs, only poll (e.g. behind PgBouncer in transaction mode)"),
    _WorkerFlag(("--delete-jobs",), "delete_jobs", "delete finished jobs (default: never)", _choice("never", "successful", "always"), "{never,successful,always}"),
    _WorkerFlag(("--fetch-job-polling-interval",), "fetch_job_polling_interval", "how often to look for jobs without a notification", _seconds_over_0, "SECONDS"),
    _WorkerFlag(("--abort-job-polling-interval",), "abort_job_polling_interval", "how often to look for abort requests without a notification", _seconds_over_0, "SECONDS"),
)
# fmt: on


def worker_options(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> dict[str, Any]:
    """The ``run_worker_sync`` keywords the operator set, ``backend`` included.

    A flag given on the command line wins; otherwise its non-empty
    ``PROCRASTINATE_ANYIO_WORKER_<FLAG>`` variable is used; otherwise the
    option is left out.

    Raises:
        CLIError: an environment variable holds an invalid value.
    """
    given = vars(args)
    options: dict[str, Any] = {}
    for flag in _WORKER_FLAGS:
        if flag.option in given:
            options[flag.option] = given[flag.option]
            continue
        text = environ.get(flag.env_var, "")
        if not text:
            continue
        try:
            value = (flag.parse or _switch)(text)
        except argparse.ArgumentTypeError as exc:
            raise CLIError(f"{flag.env_var}: {exc}") from None
        if flag.parse is None:
            value = flag.switch_value if value else not flag.switch_value
        options[flag.option] = value
    return options


def _load_app(args: argparse.Namespace) -> App:
    path = args.app or os.environ.get(APP_ENV_VAR)
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


def _cmd_defer(args: argparse.Namespace) -> int:
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
        _echo(f"Not deferred: a job with queueing lock {lock!r} is already waiting")
        return 0
    extra = {"action": "defer_job", "job_id": job_id, "task_name": task_name}
    logger.info("Deferred job %s", job_id, extra=extra)
    call = ", ".join(f"{key}={value!r}" for key, value in arguments.items())
    _echo(f"Deferred {task_name}[{job_id}]({call})")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    if args.schema_action == "read":
        _echo(SchemaManager.get_schema().rstrip("\n"))
        return 0
    if args.schema_action == "migrations_path":
        _echo(str(SchemaManager.get_migrations_path()))
        return 0
    app = _load_app(args)

    async def apply() -> list[str]:
        async with app.open_async():
            return await app.schema_manager.apply_schema_async()

    applied = anyio.run(apply, backend="asyncio")
    extra = {"action": "apply_schema", "applied": applied}
    logger.info("Applied %d migration(s)", len(applied), extra=extra)
    if applied:
        _echo(f"Applied {len(applied)} migration(s): {', '.join(applied)}")
    else:
        _echo("The schema is up to date: nothing to apply")
    return 0


def _check(name: str, ok: bool, detail: str) -> None:
    extra = {"action": "healthcheck", "check": name, "ok": ok}
    logger.info("Check %s: %s", name, "OK" if ok else "FAILED", extra=extra)
    _echo(f"{name}: {'OK' if ok else 'FAILED'} - {_one_line(detail)}")


def _cmd_healthchecks(args: argparse.Namespace) -> int:
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


def _cmd_worker(args: argparse.Namespace) -> int:
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


def _cmd_shell(args: argparse.Namespace) -> int:
    app = _load_app(args)
    with app.open():
        shell = Shell(app.job_manager)
        if args.shell_command:
            shell.onecmd(shlex.join(args.shell_command))
            return EXIT_ERROR if shell.failed else 0
        shell.cmdloop()
    return 0


def _version_text() -> str:
    versions = {name: importlib.metadata.version(name) for name in ("psycopg", "anyio")}
    return (
        f"{PROG} {__version__} (Python {platform.python_version()}, "
        f"psycopg {versions['psycopg']}, anyio {versions['anyio']})"
    )


def make_parser() -> argparse.ArgumentParser:
    """The argument parser of the whole CLI."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Operate a procrastinate_anyio task queue."
    )
    app_help = f"dotted path to the App, like myproject.tasks.app [env: {APP_ENV_VAR}]"
    parser.add_argument("-a", "--app", help=app_help)
    verbose_help = "log to stderr: -v info, -vv debug"
    parser.add_argument("-v", "--verbose", action="count", default=0, help=verbose_help)
    parser.add_argument("--version", action="version", version=_version_text())
    commands = parser.add_subparsers(title="commands", dest="command", required=True)

    def command(
        name: str, func: Callable[[argparse.Namespace], int], summary: str
    ) -> argparse.ArgumentParser:
        description = summary[0].upper() + summary[1:]
        sub = commands.add_parser(name, help=summary, description=description)
        sub.set_defaults(func=func)
        return sub

    defer = command("defer", _cmd_defer, "defer a job of a task")
    arg = defer.add_argument
    arg("task", help="the task's name (or alias)")
    json_help = "the task's keyword arguments, a JSON object (default: {})"
    arg("json_args", nargs="?", default="{}", metavar="JSON_ARGS", help=json_help)
    arg("--queue", help="the queue (default: the task's)")
    arg("--lock", help="at most one job with this lock runs at a time")
    arg("--queueing-lock", help="at most one job with this queueing lock waits")
    arg("--priority", type=int, help="higher runs first (default: the task's)")
    when = defer.add_mutually_exclusive_group().add_argument
    when("--at", metavar="DATETIME", help="not before this ISO 8601 aware datetime")
    in_help = "not before this many seconds from now"
    when("--in", dest="in_", type=_seconds, metavar="SECONDS", help=in_help)
    ignore_help = "exit 0 when the queueing lock is taken"
    arg("--ignore-already-enqueued", action="store_true", help=ignore_help)
    arg("--unknown", action="store_true", help="allow a task this app does not know")

    schema = command("schema", _cmd_schema, "apply or show the database schema")
    schema.set_defaults(schema_action="apply")
    arg = schema.add_mutually_exclusive_group().add_argument
    store: dict[str, Any] = {"dest": "schema_action", "action": "store_const"}
    arg("--apply", const="apply", help="create or update the schema (default)", **store)
    arg("--read", const="read", help="print schema.sql", **store)
    path_help = "print the folder of the migration files"
    arg("--migrations-path", const="migrations_path", help=path_help, **store)

    summary = "check the app, the database and the schema"
    command("healthchecks", _cmd_healthchecks, summary)

    shell = command("shell", _cmd_shell, "inspect and act on jobs, interactively")
    shell.add_argument(
        "shell_command",
        nargs=argparse.REMAINDER,
        help="run one shell command and exit, e.g. list_jobs status=failed",
    )

    worker = command("worker", _cmd_worker, "run a worker until Ctrl-C or SIGTERM")
    worker.epilog = (
        f"Each flag can also be set by an environment variable ({WORKER_ENV_PREFIX}"
        "<FLAG>, like PROCRASTINATE_ANYIO_WORKER_ONE_SHOT=1); the command line wins."
    )
    for flag in _WORKER_FLAGS:
        options: dict[str, Any] = {"dest": flag.option, "default": argparse.SUPPRESS}
        if flag.parse is None:
            options.update(action="store_const", const=flag.switch_value)
        else:
            options.update(type=flag.parse, metavar=flag.metavar)
        worker.add_argument(
            *flag.flags, help=f"{flag.help} [env: {flag.env_var}]", **options
        )
    return parser


class _ExtraFormatter(logging.Formatter):
    """Shows a record's ``extra`` after its message: ``[action=defer_job job_id=3]``."""

    _standard = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        extra = {k: v for k, v in vars(record).items() if k not in self._standard}
        if not extra:
            return line
        action = extra.pop("action", None)
        fields = [f"action={action}"] if action is not None else []
        fields += [f"{key}={value!r}" for key, value in extra.items()]
        return f"{line} [{' '.join(fields)}]"


def _configure_logging(verbosity: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _ExtraFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    levels = {0: logging.WARNING, 1: logging.INFO}
    logging.basicConfig(
        level=levels.get(verbosity, logging.DEBUG), handlers=[handler], force=True
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI.

    Args:
        argv: the arguments, without the program name (default: ``sys.argv[1:]``).

    Raises:
        SystemExit: always, with the exit code: 0 success, 1 an error the
            operator can fix or a failed health check, 2 a usage error,
            130 interrupted.
    """
    args = make_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        code: int = args.func(args)
    except (CLIError, ProcrastinateException) as exc:
        logger.debug("The command failed", exc_info=True, extra={"action": "cli_error"})
        _echo(f"Error: {_one_line(str(exc)) or type(exc).__name__}", err=True)
        code = EXIT_ERROR
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        # `schema --read | head` closed stdout: exit without a traceback (the
        # recipe of Python's docs, "Note on SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_ERROR
    raise SystemExit(code)
