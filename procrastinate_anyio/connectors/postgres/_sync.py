"""The PostgreSQL connector for sync code (scripts, Django views, the sync
API), on psycopg's sync connection and pool. It runs the same operations as
the async connector (:mod:`._pg_ops`)."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

import psycopg
import psycopg_pool
from psycopg.rows import dict_row

from ..._backoff import Backoff
from ..._exceptions import AppNotOpen, ConnectorException
from . import _ops
from ._pool import _is_alive
from ._pooler import PoolerDetection
from ._redact import cause_of, connector_error, secrets_of

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ..._job import Job, JobToDefer
    from .._types import (
        CancelParams,
        GroupStats,
        JobFilter,
        PausedQueue,
        RetryParams,
    )

OPEN_TIMEOUT_SECONDS: Final = 10.0
"""How long ``open()`` waits for the pool's first connection."""

WAIT_RECONNECT_START_SECONDS: Final = 0.05
WAIT_RECONNECT_MAX_SECONDS: Final = 1.0
"""Backoff of a ``wait_for_job`` that lost its connection."""

T = TypeVar("T")

logger = logging.getLogger("procrastinate_anyio.pg")


def _check_alive(conn: psycopg.Connection[Any]) -> None:
    """The pool's check of a connection it lends: one that the server closed
    while it sat idle (a restart, ``pg_terminate_backend``) is replaced
    instead of failing the caller's statement. No round trip: it reads what
    the server already sent."""
    if not _is_alive(conn):
        raise psycopg.OperationalError("the server closed the idle connection")


def _is_transient(exc: Exception) -> bool:
    """A lost connection (worth a new one), not a bad query."""
    if isinstance(exc, ConnectorException):
        return exc.transient
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))


def run_operation_sync(conn: psycopg.Connection[Any], op: _ops.Operation[T]) -> T:
    """Drive one operation on ``conn``; the sync twin of ``run_operation_async``.

    On a connection that is already in a transaction (a caller's own), the
    operation joins it.
    """
    try:
        try:
            statement = next(op)
        except StopIteration as stop:
            result: T = stop.value
            return result
        return _drive(conn, op, statement)
    except psycopg.Error as exc:
        raise _ops.translate_error(exc) from exc


def _drive(
    conn: psycopg.Connection[Any],
    op: _ops.Operation[T],
    statement: _ops.Statement,
) -> T:
    while True:
        if statement is _ops.BEGIN:
            with conn.transaction():
                return _drive(conn, op, op.send([]))
        cursor = conn.cursor(row_factory=_ops.job_rows if statement.jobs else dict_row)
        cursor.execute(statement.query(), statement.params or None)
        rows: list[Any] = cursor.fetchall() if cursor.description else []
        try:
            statement = op.send(rows)
        except StopIteration as stop:
            result: T = stop.value
            return result


class SyncPsycopgConnector:
    """Connects to PostgreSQL from code without an event loop.

    Args:
        conninfo: a libpq connection string or URI; empty means libpq's
            environment variables.
        min_size: connections the pool keeps open.
        max_size: the most connections the pool opens at once.
        connect_kwargs: more connection parameters, passed to psycopg.
    """

    def __init__(
        self,
        conninfo: str = "",
        *,
        min_size: int = 1,
        max_size: int = 4,
        connect_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if not 0 <= min_size <= max_size or max_size < 1:
            raise ValueError(
                f"need 0 <= min_size <= max_size and max_size >= 1, "
                f"not min_size={min_size}, max_size={max_size}"
            )
        self.conninfo = conninfo
        self.min_size = min_size
        self.max_size = max_size
        self.connect_kwargs: dict[str, Any] = dict(connect_kwargs or {})
        self._secrets = secrets_of(conninfo, self.connect_kwargs)
        self._pooler = PoolerDetection(self.connect_kwargs)
        self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] | None = None

    def __repr__(self) -> str:
        return f"SyncPsycopgConnector(max_size={self.max_size})"

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    def open(self) -> None:
        if self._pool is not None:
            return
        pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] = (
            psycopg_pool.ConnectionPool(
                self.conninfo,
                min_size=self.min_size,
                max_size=self.max_size,
                kwargs={**self.connect_kwargs, "autocommit": True},
                configure=self._pooler.configure_sync,
                check=_check_alive,
                open=False,
                name="procrastinate_anyio",
            )
        )
        try:
            pool.open(wait=True, timeout=OPEN_TIMEOUT_SECONDS)
            with pool.connection() as conn:
                conn.execute("SELECT 1")
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            pool.close()
            raise connector_error(
                "Could not connect to PostgreSQL: ", exc, self._secrets
            ) from cause_of(exc, self._secrets)
        self._pool = pool

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def _run(self, op: _ops.Operation[T]) -> T:
        if self._pool is None:
            op.close()
            raise AppNotOpen("The connector is not open: use `with app.open():`")
        try:
            with self._pool.connection() as conn:
                return run_operation_sync(conn, op)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise _ops.translate_error(exc, self._secrets) from cause_of(
                exc, self._secrets
            )

    def job_cancel(self, params: CancelParams, *, connection: Any = None) -> bool:
        if connection is None:
            return self._run(_ops.job_cancel(params))
        op = _ops.in_callers_transaction(connection, _ops.job_cancel(params))
        return run_operation_sync(connection, op)

    def job_defer_many(
        self, jobs: Sequence[JobToDefer], *, connection: Any = None
    ) -> list[int]:
        if connection is None:
            return self._run(_ops.job_defer_many(jobs))
        op = _ops.in_callers_transaction(connection, _ops.job_defer_many(jobs))
        return run_operation_sync(connection, op)

    def job_get(self, job_id: int) -> Job | None:
        return self._run(_ops.job_get(job_id))

    def job_list(self, filters: JobFilter) -> list[Job]:
        return self._run(_ops.job_list(filters))

    def job_retry(self, params: RetryParams) -> bool:
        return self._run(_ops.job_retry(params))

    def job_stats(
        self, group_by: Literal["queue", "task", "lock"], filters: JobFilter
    ) -> list[GroupStats]:
        return self._run(_ops.job_stats(group_by, filters))

    def job_wait_finished(self, job_id: int, timeout: float | None) -> Job | None:
        """LISTEN on a dedicated connection and re-read the job on each
        notification of finished jobs (and every second, as a fallback).

        A connection lost during the wait (the server dropped it, or
        restarted) is made again, with backoff, and the wait goes on under
        the same registration; a wait whose first connection fails raises.
        """
        if self._pool is None:
            raise AppNotOpen("The connector is not open: use `with app.open():`")
        deadline = None if timeout is None else time.monotonic() + timeout
        backoff = Backoff(WAIT_RECONNECT_START_SECONDS, WAIT_RECONNECT_MAX_SECONDS)
        waiter_id: int | None = None
        try:
            while True:
                try:
                    with psycopg.connect(
                        self.conninfo, autocommit=True, **self.connect_kwargs
                    ) as conn:
                        conn.execute(_ops.Statement("listen").query())
                        if waiter_id is None:
                            waiter_id = run_operation_sync(
                                conn, _ops.job_wait_begin(job_id)
                            )
                        backoff.reset()
                        job = self._wait(conn, job_id, deadline)
                        run_operation_sync(conn, _ops.job_wait_end(waiter_id))
                        waiter_id = None
                        return job
                except (psycopg.Error, ConnectorException) as exc:
                    lost = waiter_id is not None and _is_transient(exc)
                    if not lost or (
                        deadline is not None and time.monotonic() > deadline
                    ):
                        raise
                    logger.warning(
                        "A wait for job %s lost its connection, reconnecting: %s",
                        job_id,
                        _ops.translate_error(exc, self._secrets)
                        if isinstance(exc, psycopg.Error)
                        else exc,
                        extra={"action": "wait_for_job_reconnect"},
                    )
                    time.sleep(backoff.next())
        except psycopg.Error as exc:
            raise _ops.translate_error(exc, self._secrets) from cause_of(
                exc, self._secrets
            )
        finally:
            if waiter_id is not None:  # best effort: a stale row is pruned later
                with contextlib.suppress(psycopg.Error, ConnectorException, AppNotOpen):
                    self._run(_ops.job_wait_end(waiter_id))

    @staticmethod
    def _wait(
        conn: psycopg.Connection[Any], job_id: int, deadline: float | None
    ) -> Job | None:
        while True:
            job = run_operation_sync(conn, _ops.job_get(job_id))
            if job is None or job.status.is_final:
                return job
            remaining = 1.0 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                return job
            for _ in conn.notifies(timeout=min(remaining, 1.0), stop_after=1):
                pass

    def queue_list_paused(self) -> list[PausedQueue]:
        return self._run(_ops.queue_list_paused())

    def queue_pause(self, queue: str) -> bool:
        return self._run(_ops.queue_pause(queue))

    def queue_resume(self, queue: str) -> bool:
        return self._run(_ops.queue_resume(queue))

    def schema_applied_migrations(self) -> list[str] | None:
        return self._run(_ops.schema_applied_migrations())

    def schema_apply(
        self, schema_sql: str, migrations: Sequence[tuple[str, str]]
    ) -> list[str]:
        return self._run(_ops.schema_apply(schema_sql, migrations))
