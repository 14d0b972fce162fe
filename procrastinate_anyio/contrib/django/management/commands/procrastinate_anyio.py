"""``./manage.py procrastinate_anyio worker | defer | schema | healthchecks |
shell``: the ``procrastinate-anyio`` CLI on the Django app.

Arguments go to the CLI untouched, so the flags, environment variables,
output and exit codes are the CLI's (``--app`` defaults to the Django app).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connections

from procrastinate_anyio.contrib.django._core import cli_main

APP_PATH = "procrastinate_anyio.contrib.django.app"


def run_cli(arguments: list[str], prog: str = "manage.py procrastinate_anyio") -> int:
    """Run the CLI on the Django app; returns its exit code."""
    try:
        cli_main(["--app", APP_PATH, *arguments], prog=prog)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        connections.close_all()
    return 0  # pragma: no cover  # cli_main always exits


class Command(BaseCommand):
    help = "Operate the task queue: worker, defer, schema, healthchecks, shell."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "cli_arguments",
            nargs=argparse.REMAINDER,
            help="a procrastinate-anyio command and its flags, e.g. worker --concurrency 4",
        )

    def run_from_argv(self, argv: list[str]) -> None:
        # Everything after the command's name is the CLI's, --help included.
        program = os.path.basename(argv[0])
        if program == "__main__.py":  # as Django names itself
            program = "python -m django"
        raise SystemExit(run_cli(argv[2:], prog=f"{program} {argv[1]}"))

    def handle(self, *args: Any, **options: Any) -> None:
        """``call_command("procrastinate_anyio", "worker", ...)``.

        Raises:
            SystemExit: the CLI failed (its exit code).
        """
        code = run_cli([*args, *options["cli_arguments"]])
        if code:
            raise SystemExit(code)
