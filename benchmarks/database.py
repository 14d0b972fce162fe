"""Databases of the run, and what the server says about itself.

Everything here is plain (blocking) psycopg, used outside the timed regions:
creating the databases, TRUNCATE, ANALYZE, CHECKPOINT, and the counters that
the cost scenario reads before and after a phase.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any, Final

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from collections.abc import Iterable

DURABILITY_SETTINGS: Final = (
    "fsync",
    "synchronous_commit",
    "wal_level",
    "full_page_writes",
)
OTHER_SETTINGS: Final = ("shared_buffers", "autovacuum", "max_connections")
ALLOWED_PREFIX: Final = "pa_bench"


def dsn_for(admin_dsn: str, dbname: str) -> str:
    """The admin DSN pointed at another database."""
    return psycopg.conninfo.make_conninfo(admin_dsn, dbname=dbname)


def _check_name(name: str) -> None:
    if not name.startswith(ALLOWED_PREFIX):
        raise ValueError(f"benchmark databases start with {ALLOWED_PREFIX!r}: {name!r}")


def recreate_database(admin_dsn: str, name: str) -> str:
    """Drop ``name`` if it exists and create it empty; returns its DSN."""
    _check_name(name)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return dsn_for(admin_dsn, name)


def drop_database(admin_dsn: str, name: str) -> None:
    _check_name(name)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )


def execute(dsn: str, query: str | sql.Composable) -> list[tuple[Any, ...]]:
    """Run one statement in autocommit; its rows, if any."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        cursor = conn.execute(query)  # type: ignore[arg-type]  # benchmark-owned SQL
        return cursor.fetchall() if cursor.description else []


def reset_tables(dsn: str, tables: Iterable[str]) -> None:
    """TRUNCATE the tables (identities restart): each timed run starts empty."""
    names = sql.SQL(", ").join(sql.Identifier(table) for table in tables)
    execute(dsn, sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(names))


def settle(admin_dsn: str, dsn: str, tables: Iterable[str]) -> None:
    """Before a timed run: fresh planner statistics for the pre-filled tables,
    and a CHECKPOINT, so that every run pays the same full-page writes."""
    names = sql.SQL(", ").join(sql.Identifier(table) for table in tables)
    execute(dsn, sql.SQL("ANALYZE {}").format(names))
    execute(admin_dsn, "CHECKPOINT")


def count(dsn: str, query: str | sql.Composable) -> int:
    rows = execute(dsn, query)
    return int(rows[0][0])


@dataclasses.dataclass(frozen=True)
class ServerInfo:
    version: str
    settings: dict[str, str]
    statements_source: str | None
    """Why statements per job are "n/a", or None when pg_stat_statements works."""

    def header_lines(self) -> list[str]:
        durability = " ".join(
            f"{name}={self.settings[name]}" for name in DURABILITY_SETTINGS
        )
        other = " ".join(f"{name}={self.settings[name]}" for name in OTHER_SETTINGS)
        return [
            f"PostgreSQL: {self.version}",
            f"Durability: {durability}",
            f"Other settings: {other}",
            "pg_stat_statements: "
            + (self.statements_source or "available (statements per job measured)"),
        ]


def server_info(admin_dsn: str) -> ServerInfo:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        version = conn.execute("SELECT version()").fetchone()
        rows = conn.execute(
            "SELECT name, current_setting(name) FROM unnest(%s::text[]) AS name",
            [list(DURABILITY_SETTINGS + OTHER_SETTINGS)],
        ).fetchall()
        preload = conn.execute(
            "SELECT current_setting('shared_preload_libraries')"
        ).fetchone()
        available = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements'"
        ).fetchone()
    reason = None
    if available is None:
        reason = "n/a (extension not installed on the server)"
    elif preload is None or "pg_stat_statements" not in str(preload[0]):
        reason = "n/a (not in shared_preload_libraries; server config left alone)"
    return ServerInfo(
        version=str(version[0]).split(" on ")[0] if version else "?",
        settings={str(name): str(value) for name, value in rows},
        statements_source=reason,
    )


def enable_statements(dsn: str, info: ServerInfo) -> bool:
    """Create pg_stat_statements in a benchmark database if the server can."""
    if info.statements_source is not None:
        return False
    execute(dsn, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return True


@dataclasses.dataclass(frozen=True)
class Counters:
    """Server counters read before and after a phase of the cost scenario."""

    wal_lsn: str
    transactions: int
    statements: int | None

    def minus(self, before: Counters, admin_dsn: str) -> dict[str, float | None]:
        wal = execute(
            admin_dsn,
            sql.SQL("SELECT pg_wal_lsn_diff({}, {})").format(
                sql.Literal(self.wal_lsn), sql.Literal(before.wal_lsn)
            ),
        )[0][0]
        statements = (
            None
            if self.statements is None or before.statements is None
            else float(self.statements - before.statements)
        )
        return {
            "wal_bytes": float(wal),
            "transactions": float(self.transactions - before.transactions),
            "statements": statements,
        }


def read_counters(admin_dsn: str, dbname: str, statements: bool) -> Counters:
    """WAL position (server-wide), transactions of ``dbname``
    (pg_stat_database) and, when available, top-level statements of
    ``dbname`` (pg_stat_statements, read from a connection to that database,
    its own queries excluded)."""
    _wait_for_idle_database(admin_dsn, dbname)
    rows = execute(
        admin_dsn,
        sql.SQL(
            "SELECT pg_current_wal_lsn()::text, xact_commit + xact_rollback "
            "FROM pg_stat_database WHERE datname = {}"
        ).format(sql.Literal(dbname)),
    )
    calls = None
    if statements:
        calls = count(
            dsn_for(admin_dsn, dbname),
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND query NOT ILIKE '%pg_stat_statements%'",
        )
    return Counters(wal_lsn=rows[0][0], transactions=int(rows[0][1]), statements=calls)


def _wait_for_idle_database(admin_dsn: str, dbname: str) -> None:
    """Wait until no backend is connected to ``dbname``: a backend writes its
    pending statistics when it exits, so the counters are complete."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = count(
            admin_dsn,
            sql.SQL(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = {} "
                "AND pid <> pg_backend_pid()"
            ).format(sql.Literal(dbname)),
        )
        if left == 0:
            break
        time.sleep(0.05)
    time.sleep(0.3)  # the exit hooks flush statistics after leaving pg_stat_activity


class Noise:
    """What else the server did during a timed run: checkpoints (each one
    makes the next write of every page a full-page write) and transactions of
    other databases (a database dropped meanwhile counts for nothing). Read
    before and after the run (blocking, outside the timed region)."""

    def __init__(self, admin_dsn: str, dbname: str) -> None:
        self._admin_dsn = admin_dsn
        self._dbname = dbname
        self._before: tuple[int, dict[str, int]] = (0, {})

    def _read(self) -> tuple[int, dict[str, int]]:
        with psycopg.connect(self._admin_dsn, autocommit=True) as conn:
            checkpoints = conn.execute(
                "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
            ).fetchone()
            rows = conn.execute(
                "SELECT datname, xact_commit + xact_rollback FROM pg_stat_database "
                "WHERE datname IS NOT NULL AND datname <> %s",
                [self._dbname],
            ).fetchall()
        return int(checkpoints[0]) if checkpoints else 0, {
            str(name): int(count) for name, count in rows
        }

    def start(self) -> None:
        self._before = self._read()

    def stop(self) -> dict[str, int]:
        checkpoints, transactions = self._read()
        before = self._before[1]
        return {
            "checkpoints": checkpoints - self._before[0],
            "other_transactions": sum(
                max(0, count - before.get(name, 0))
                for name, count in transactions.items()
            ),
        }
