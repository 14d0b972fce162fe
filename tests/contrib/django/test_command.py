"""``manage.py procrastinate_anyio``: the CLI on the Django app."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from procrastinate_anyio import Status
from procrastinate_anyio.contrib.django import app

from .conftest import database_name
from .testapp.tasks import add

ROOT = Path(__file__).parents[3]


def manage(dsn: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    """``django-admin procrastinate_anyio ...`` on the test settings and the
    database of ``dsn``."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.contrib.django.settings",
        "PA_TEST_DJANGO_DB_NAME": database_name(dsn),
    }
    return subprocess.run(
        [sys.executable, "-m", "django", "procrastinate_anyio", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_defer_then_worker(django_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``defer`` writes a job of a discovered task, ``worker --one-shot`` runs it."""
    call_command("procrastinate_anyio", "defer", add.name, '{"a": 1, "b": 2}')
    call_command("procrastinate_anyio", "worker", "--one-shot")

    (job,) = app.job_manager.list_jobs()
    assert (job.status, job.result) == (Status.SUCCEEDED, 3)
    assert f"Deferred {add.name}[{job.id}]" in capsys.readouterr().out


def test_command_line_matches_the_cli(django_db: str) -> None:
    """As a command line, the flags and output are the CLI's."""
    schema = manage(django_db, "schema", "--apply")
    health = manage(django_db, "healthchecks")
    shell = manage(django_db, "shell", "list_jobs")
    usage = manage(django_db, "worker", "--concurrency", "zero")

    assert (schema.returncode, health.returncode, shell.returncode) == (0, 0, 0)
    assert "up to date" in health.stdout
    assert usage.returncode == 2
    assert "--concurrency" in usage.stderr
    assert usage.stderr.startswith("usage: python -m django procrastinate_anyio")


def test_cli_error_exits_1(django_db: str) -> None:
    """An error the operator can fix is one line and exit code 1."""
    with pytest.raises(SystemExit) as exc_info:
        call_command("procrastinate_anyio", "defer", "no.such.task")

    assert exc_info.value.code == 1
