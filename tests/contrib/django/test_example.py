"""The example project in ``examples/django``: its own tests pass under
Django's test runner, against PostgreSQL."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from tests.conftest import ADMIN_DSN, DB_PREFIX, drop_database

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory

EXAMPLE = Path(__file__).parents[3] / "examples" / "django"


@pytest.mark.slow
def test_example_project_tests_pass() -> None:
    """``manage.py test`` of the example project passes: a view defers in its
    transaction, a worker runs the ORM task, the periodic task is declared."""
    name = f"{DB_PREFIX}_example"
    params = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)
    env = {
        **os.environ,
        "EXAMPLE_DB_NAME": name,
        "PGHOST": str(params.get("host", "127.0.0.1")),
        "PGPORT": str(params.get("port", "5432")),
        "PGUSER": str(params.get("user", "postgres")),
        "PGPASSWORD": str(params.get("password", "")),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    try:
        result = subprocess.run(
            [sys.executable, "manage.py", "test", "--noinput", "-v", "2"],
            cwd=EXAMPLE,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        drop_database(f"test_{name}")  # the runner's, if it could not drop it

    assert result.returncode == 0, result.stderr
    assert "Ran 3 tests" in result.stderr


HOWTO = Path(__file__).parents[3] / "docs" / "howto" / "django.md"


def howto_commands() -> list[list[str]]:
    """The ``./manage.py`` lines of the how-to's bash blocks, in order."""
    lines = re.findall(r"```bash\n(.*?)```", HOWTO.read_text("utf-8"), re.DOTALL)
    return [
        shlex.split(line)[1:]
        for block in lines
        for line in block.splitlines()
        if line.startswith("./manage.py ")
    ]


@pytest.mark.slow
def test_howto_commands_run_in_the_example(new_database: DatabaseFactory) -> None:
    """The how-to's commands, run in order in the example project on an empty
    database, create the tables and run a job deferred from Django (the
    worker with ``--one-shot``, so that it ends)."""
    dsn = new_database()
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    env = {
        **os.environ,
        "EXAMPLE_DB_NAME": str(params["dbname"]),
        "PGHOST": str(params.get("host", "127.0.0.1")),
        "PGPORT": str(params.get("port", "5432")),
        "PGUSER": str(params.get("user", "postgres")),
        "PGPASSWORD": str(params.get("password", "")),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)

    def manage(*arguments: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *arguments],
            cwd=EXAMPLE,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, (arguments, result.stderr)
        return result.stdout

    commands = howto_commands()
    assert [command[:2] for command in commands] == [
        ["migrate"],
        ["procrastinate_anyio", "worker"],
    ]
    manage(*commands[0])
    assert "No migrations to apply" in manage("migrate")
    manage(
        "shell",
        "-c",
        "from notes.models import Note; from notes.tasks import count_words; "
        "count_words.defer(note_id=Note.objects.create(text='one two').id)",
    )
    manage(*commands[1], "--one-shot")

    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT words FROM notes_note").fetchone()
    assert row == (2,)
