"""``procrastinate-anyio move-from-procrastinate``, run for real in a
subprocess, on Procrastinate's real tables (written by Procrastinate itself:
``tests/procrastinate_tables.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests import procrastinate_tables

from .test_cli import assert_user_error, list_jobs, run_cli

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory


def test_move_dry_run_then_move_then_again(pg_dsn: str) -> None:
    """--dry-run prints what would move and writes nothing; the move prints a
    line per job left behind and the summary; a second run moves nothing."""
    procrastinate_tables.install_schema(pg_dsn)
    backlog = procrastinate_tables.fill(pg_dsn)
    skipped = (
        f"Skipped Procrastinate job {backlog.behind_doing}: its lock 'D' is held "
        "by a running Procrastinate job"
    )

    result = run_cli("move-from-procrastinate", "--dry-run", dsn=pg_dsn)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        skipped,
        "Would move 7 job(s) (1 scheduled) and 1 periodic tick(s) from "
        "Procrastinate's tables; skipped 1 waiting job(s); left 1 doing job(s)",
    ]
    assert list_jobs(pg_dsn) == []

    result = run_cli("move-from-procrastinate", dsn=pg_dsn)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith(
        "Moved 7 job(s) (1 scheduled) and 1 periodic tick(s)"
    )
    assert len(list_jobs(pg_dsn)) == 7

    result = run_cli("move-from-procrastinate", dsn=pg_dsn)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        skipped,
        "Moved 0 job(s) (0 scheduled) and 0 periodic tick(s) from Procrastinate's "
        "tables; skipped 1 waiting job(s); left 1 doing job(s)",
    ]


def test_move_refused(pg_dsn: str, new_database: DatabaseFactory) -> None:
    """Refusals are one Error line and exit code 1: no Procrastinate tables;
    an active Procrastinate worker (--force moves anyway); no schema of ours."""
    assert_user_error(
        run_cli("move-from-procrastinate", dsn=pg_dsn),
        "Procrastinate's tables are absent",
    )
    procrastinate_tables.install_schema(pg_dsn)
    procrastinate_tables.defer(pg_dsn)
    procrastinate_tables.register_worker(pg_dsn)

    assert_user_error(
        run_cli("move-from-procrastinate", dsn=pg_dsn),
        "1 Procrastinate worker(s) heartbeated in the last 30 s",
    )
    assert list_jobs(pg_dsn) == []

    result = run_cli("move-from-procrastinate", "--force", dsn=pg_dsn)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Moved 1 job(s)")
    assert result.stdout.rstrip().endswith("1 Procrastinate worker(s) active")
    assert_user_error(
        run_cli("move-from-procrastinate", dsn=new_database()), "schema --apply"
    )


def test_move_bad_timeout() -> None:
    """--worker-timeout must be a positive number (a usage error)."""
    result = run_cli("move-from-procrastinate", "--worker-timeout", "0")

    assert result.returncode == 2
    assert "--worker-timeout" in result.stderr
