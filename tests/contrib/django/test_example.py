"""The example project in ``examples/django``: its own tests pass under
Django's test runner, against PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ADMIN_DSN, DB_PREFIX, drop_database

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
    assert "Ran 2 tests" in result.stderr
