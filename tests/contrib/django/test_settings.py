"""The ``PROCRASTINATE_ANYIO_*`` settings and what a misconfiguration says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from procrastinate_anyio.contrib.django import app

from .testapp.hooks import READY
from .testapp.tasks import write_note

ROOT = Path(__file__).parents[3]


def test_tasks_are_discovered() -> None:
    """The tasks of each installed app's ``tasks.py`` are registered."""
    assert app.get_task(write_note.name) is write_note


def test_import_paths_are_imported() -> None:
    """``IMPORT_PATHS`` modules are imported when Django is ready."""
    assert app.get_task("imported_by_path").name == "imported_by_path"
    assert app.import_paths == ["tests.contrib.django.testapp.more_tasks"]


def test_on_app_ready_hook() -> None:
    """``ON_APP_READY`` is called once with the app."""
    assert [app] == READY


def test_worker_defaults() -> None:
    """``WORKER_DEFAULTS`` become the app's ``worker_defaults``."""
    assert app.worker_defaults == {"install_signal_handlers": False}


def django_check(settings: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.contrib.django.settings",
        "PA_TEST_DJANGO_SETTINGS": json.dumps(settings),
    }
    return subprocess.run(
        [sys.executable, "-m", "django", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param(
            {"PROCRASTINATE_ANYIO_DATABASE_ALIAS": "nope"},
            "PROCRASTINATE_ANYIO_DATABASE_ALIAS: 'nope' is not in DATABASES",
            id="unknown-alias",
        ),
        pytest.param(
            {"PROCRASTINATE_ANYIO_DATABASE_ALIAS": "lite"},
            "uses 'django.db.backends.sqlite3'; procrastinate_anyio needs PostgreSQL",
            id="not-postgresql",
        ),
        pytest.param(
            {"PROCRASTINATE_ANYIO_IMPORT_PATHS": ["no.such.module"]},
            "PROCRASTINATE_ANYIO_IMPORT_PATHS: Could not import 'no.such.module'",
            id="import-path",
        ),
        pytest.param(
            {"PROCRASTINATE_ANYIO_ON_APP_READY": "no.such.hook"},
            "PROCRASTINATE_ANYIO_ON_APP_READY: cannot import 'no.such.hook'",
            id="hook",
        ),
        pytest.param(
            {"PROCRASTINATE_ANYIO_WORKER_DEFAULTS": ["concurrency"]},
            "PROCRASTINATE_ANYIO_WORKER_DEFAULTS: expected a dict",
            id="worker-defaults",
        ),
    ],
)
def test_misconfiguration_fails_at_startup(
    settings: dict[str, Any], message: str
) -> None:
    """A wrong setting stops Django at startup with one clear message."""
    result = django_check(settings)

    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: ")
    assert message in last_line
