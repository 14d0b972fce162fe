"""The operator CLI: ``procrastinate-anyio`` and ``python -m procrastinate_anyio``.

Commands: ``defer``, ``schema``, ``healthchecks``, ``worker``, ``shell``,
``queue``, ``move-from-procrastinate``; see
``docs/cli.md``. This module assembles the parser and runs a command; the
commands are in ``_commands.py``, the worker flags in ``_flags.py``.

Errors the operator can fix (bad JSON, an unknown task, an unreachable
database, an app path that does not import...) print one ``Error: ...`` line
on stderr and exit 1; argparse's own usage errors exit 2. Anything else is a
bug and crashes with its traceback; with ``-vv`` the traceback of a handled
error is logged too.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import os
import platform
import sys
from typing import TYPE_CHECKING, Any, Final

from .._exceptions import ProcrastinateException
from .._version import __version__
from ._commands import (
    APP_ENV_VAR,
    PROCRASTINATE_APP_ENV_VAR,
    cmd_defer,
    cmd_healthchecks,
    cmd_move_from_procrastinate,
    cmd_schema,
    cmd_shell,
    cmd_worker,
    echo,
)
from ._errors import EXIT_ERROR, EXIT_INTERRUPTED, CLIError, one_line
from ._flags import add_worker_flags, env_switch, seconds, seconds_over_0
from ._logging import configure_logging
from ._queues import add_queue_command

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

logger = logging.getLogger("procrastinate_anyio.cli")

PROG: Final = "procrastinate-anyio"


def _version_text() -> str:
    versions = {name: importlib.metadata.version(name) for name in ("psycopg", "anyio")}
    return (
        f"{PROG} {__version__} (Python {platform.python_version()}, "
        f"psycopg {versions['psycopg']}, anyio {versions['anyio']})"
    )


def make_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The argument parser of the whole CLI; ``prog`` names it in usage lines
    (``manage.py procrastinate_anyio`` under Django)."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Operate a procrastinate_anyio task queue."
    )
    app_help = (
        "dotted path to the App, like myproject.tasks.app "
        f"[env: {APP_ENV_VAR}, or Procrastinate's {PROCRASTINATE_APP_ENV_VAR}]"
    )
    parser.add_argument("-a", "--app", help=app_help)
    verbose_help = (
        "log more: -v info, -vv debug (the worker logs at info by default) "
        "[env: PROCRASTINATE_VERBOSE, a count]"
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help=verbose_help)
    logs = parser.add_argument_group("logging")
    level_help = "the log level, over -v [env: PROCRASTINATE_LOG_LEVEL]"
    logs.add_argument("--log-level", type=_log_level, help=level_help)
    format_help = "the format of log lines (logging's) [env: PROCRASTINATE_LOG_FORMAT]"
    logs.add_argument("--log-format", help=format_help)
    style_help = "the style of --log-format [env: PROCRASTINATE_LOG_FORMAT_STYLE]"
    logs.add_argument("--log-format-style", choices=["%", "{", "$"], help=style_help)
    parser.add_argument("-V", "--version", action="version", version=_version_text())
    commands = parser.add_subparsers(title="commands", dest="command", required=True)

    def command(
        name: str, func: Callable[[argparse.Namespace], int], summary: str
    ) -> argparse.ArgumentParser:
        description = summary[0].upper() + summary[1:]
        sub = commands.add_parser(name, help=summary, description=description)
        sub.set_defaults(func=func)
        return sub

    defer = command("defer", cmd_defer, "defer a job of a task")
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
    when("--in", dest="in_", type=seconds, metavar="SECONDS", help=in_help)
    ignore_help = "exit 0 when the queueing lock is taken"
    switch(
        defer,
        "ignore_already_enqueued",
        ("-i", "--ignore-already-enqueued"),
        ignore_help,
    )
    switch(defer, "unknown", ("--unknown",), "allow a task this app does not know")
    for action in defer._actions:
        # Procrastinate's PROCRASTINATE_DEFER_<OPTION> variables as defaults
        # (argparse parses a string default like the command line would).
        name = f"PROCRASTINATE_DEFER_{action.dest.upper()}"
        if action.dest in _DEFER_ENV_OPTIONS and os.environ.get(name):
            action.default = os.environ[name]
            action.help = f"{action.help} [env: {name}]"

    schema = command("schema", cmd_schema, "apply or show the database schema")
    schema.set_defaults(schema_action="apply")
    arg = schema.add_mutually_exclusive_group().add_argument
    store: dict[str, Any] = {"dest": "schema_action", "action": "store_const"}
    arg("--apply", const="apply", help="create or update the schema (default)", **store)
    arg("--read", const="read", help="print schema.sql", **store)
    path_help = "print the folder of the migration files"
    arg("--migrations-path", const="migrations_path", help=path_help, **store)

    summary = "check the app, the database and the schema"
    command("healthchecks", cmd_healthchecks, summary)

    add_queue_command(command)

    summary = "move Procrastinate's waiting jobs and periodic ticks into ours"
    move = command("move-from-procrastinate", cmd_move_from_procrastinate, summary)
    arg = move.add_argument
    arg("--dry-run", action="store_true", help="print what would move, write nothing")
    force_help = "move even though Procrastinate workers heartbeated recently"
    arg("--force", action="store_true", help=force_help)
    timeout_help = "a worker that heartbeated this recently is active (default: 30)"
    arg(
        "--worker-timeout",
        type=seconds_over_0,
        default=30.0,
        metavar="SECONDS",
        help=timeout_help,
    )

    shell = command("shell", cmd_shell, "inspect and act on jobs, interactively")
    shell.add_argument(
        "shell_command",
        nargs=argparse.REMAINDER,
        help="run one shell command and exit, e.g. list_jobs status=failed",
    )

    worker = command("worker", cmd_worker, "run a worker until Ctrl-C or SIGTERM")
    add_worker_flags(worker)
    return parser


_DEFER_ENV_OPTIONS: Final = frozenset(
    {"json_args", "queue", "lock", "queueing_lock", "priority", "at", "in_"}
)


def switch(
    parser: argparse.ArgumentParser, dest: str, flags: Sequence[str], help: str
) -> None:
    """A switch with a ``--no-`` twin (Procrastinate's), off by default or by
    its ``PROCRASTINATE_DEFER_<DEST>`` variable (1/0, true/false, yes/no)."""
    variable = f"PROCRASTINATE_DEFER_{dest.upper()}"
    default = False
    if text := os.environ.get(variable):
        try:
            default = env_switch(text)
        except argparse.ArgumentTypeError as exc:
            raise CLIError(f"{variable}: {exc}") from None
    parser.add_argument(
        *flags,
        dest=dest,
        action="store_true",
        default=default,
        help=f"{help} [env: {variable}]",
    )
    parser.add_argument(
        "--no-" + flags[-1].removeprefix("--"),
        dest=dest,
        action="store_false",
        help=argparse.SUPPRESS,
    )


def _log_level(text: str) -> int:
    level = logging.getLevelName(text.strip().upper())
    if not isinstance(level, int):
        raise argparse.ArgumentTypeError(
            f"expected a level like debug, info, warning, error, not {text!r}"
        )
    return level


def _logging_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Flags first, then Procrastinate's variables."""
    environ = os.environ
    verbosity = args.verbose
    if not verbosity and environ.get("PROCRASTINATE_VERBOSE"):
        try:
            verbosity = int(environ["PROCRASTINATE_VERBOSE"])
        except ValueError:
            raise CLIError("PROCRASTINATE_VERBOSE: expected a number") from None
    level = args.log_level
    if level is None and environ.get("PROCRASTINATE_LOG_LEVEL"):
        try:
            level = _log_level(environ["PROCRASTINATE_LOG_LEVEL"])
        except argparse.ArgumentTypeError as exc:
            raise CLIError(f"PROCRASTINATE_LOG_LEVEL: {exc}") from None
    style = args.log_format_style or environ.get("PROCRASTINATE_LOG_FORMAT_STYLE", "%")
    if style not in ("%", "{", "$"):
        raise CLIError(
            f"PROCRASTINATE_LOG_FORMAT_STYLE: expected %, {{ or $: {style!r}"
        )
    return {
        "verbosity": verbosity,
        "level": level,
        "fmt": args.log_format or environ.get("PROCRASTINATE_LOG_FORMAT") or None,
        "style": style,
        # The worker tells what it does (start, jobs, stop), as Procrastinate's.
        "default_level": logging.INFO if args.command == "worker" else logging.WARNING,
    }


def main(argv: Sequence[str] | None = None, *, prog: str = PROG) -> None:
    """Run the CLI.

    Args:
        argv: the arguments, without the program name (default: ``sys.argv[1:]``).
        prog: the program's name in usage and help lines.

    Raises:
        SystemExit: always, with the exit code: 0 success, 1 an error the
            operator can fix or a failed health check, 2 a usage error,
            130 interrupted.
    """
    try:
        args = make_parser(prog).parse_args(argv)
        configure_logging(**_logging_settings(args))
    except CLIError as exc:
        echo(f"Error: {one_line(str(exc))}", err=True)
        raise SystemExit(EXIT_ERROR) from None
    try:
        code: int = args.func(args)
    except (CLIError, ProcrastinateException) as exc:
        logger.debug("The command failed", exc_info=True, extra={"action": "cli_error"})
        echo(f"Error: {one_line(str(exc)) or type(exc).__name__}", err=True)
        code = EXIT_ERROR
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        # `schema --read | head` closed stdout: exit without a traceback (the
        # recipe of Python's docs, "Note on SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_ERROR
    raise SystemExit(code)
