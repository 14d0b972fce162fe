"""The PostgreSQL connector for async code, on asyncio and Trio.

It drives the operations of :mod:`._pg_ops` over the AnyIO connection pool of
:mod:`._pg`; psycopg's own async connection does not run on Trio.
"""

from __future__ import annotations

import secrets
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

import anyio
import psycopg
import psycopg_pool
from psycopg.adapt import AdaptersMap
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads

from ... import _json
from ..._exceptions import AppNotOpen, ConnectorException
from . import _ops
from ._connection import AnyioConnection, connect
from ._pool import ConnectionPool
from ._pooler import LISTEN_PROBE_TIMEOUT_SECONDS, LISTEN_UNSUPPORTED, PoolerDetection
from ._redact import cause_of, connector_error, secrets_of
from ._sync import SyncPsycopgConnector

if TYPE_CHECKING:
    import datetime
    from collections.abc import Callable, Mapping, Sequence

    from anyio.abc import TaskStatus

    from ..._job import Job, JobToDefer
    from .._types import (
        CancelParams,
        DeleteOldParams,
        FetchParams,
        GroupStats,
        JobFilter,
        JobOutcome,
        MaintenanceParams,
        MaintenanceResult,
        MoveParams,
        Notification,
        PausedQueue,
        PeriodicDeferParams,
        ProcrastinateMove,
        RetryParams,
        StalledJobs,
    )

T = TypeVar("T")


async def run_operation_async(conn: AnyioConnection[Any], op: _ops.Operation[T]) -> T:
    """Drive one operation on ``conn``; from a ``BEGIN`` on, inside a
    transaction (a savepoint when ``conn`` is already in one, e.g. a caller's
    own: the operation then joins the caller's transaction).

    psycopg errors are translated into the library's exceptions.
    """
    try:
        try:
            statement = next(op)
        except StopIteration as stop:
            result: T = stop.value
            return result
        return await _drive(conn, op, statement)
    except psycopg.Error as exc:
        raise _ops.translate_error(exc) from exc


async def _drive(
    conn: AnyioConnection[Any],
    op: _ops.Operation[T],
    statement: _ops.Statement,
) -> T:
    while True:
        if statement is _ops.BEGIN:
            async with conn.transaction():
                return await _drive(conn, op, op.send([]))
        cursor = conn.cursor(row_factory=_ops.job_rows if statement.jobs else dict_row)
        await cursor.execute(statement.query(), statement.params or None)
        rows: list[Any] = await cursor.fetchall() if cursor.description else []
        try:
            statement = op.send(rows)
        except StopIteration as stop:
            result: T = stop.value
            return result


class PsycopgConnector:
    """Connects to PostgreSQL through psycopg 3, on asyncio and Trio.

    Args:
        conninfo: a libpq connection string or URI
            (``"postgresql:///mydb"``, ``"host=db dbname=app"``); empty means
            libpq's environment variables (``PGHOST``, ``PGDATABASE``...).
        max_size: the most connections the pool opens at once.
        min_size: accepted for Procrastinate's sake and checked
            (``0 <= min_size <= max_size``); the pool opens connections on
            demand and keeps those it opened.
        connect_kwargs: more connection parameters, passed to psycopg.
        kwargs: Procrastinate's name for ``connect_kwargs`` (both may be
            given; ``connect_kwargs`` wins on a shared key).
        json_dumps: turns a job's arguments and result into JSON text
            instead of :func:`json.dumps` (to store datetimes, say).
        json_loads: reads them back instead of :func:`json.loads`.
        pool_factory: Procrastinate's way to choose a pool:
            ``psycopg_pool.AsyncNullConnectionPool`` means no connection
            stays open between operations (PgBouncer in transaction mode);
            ``psycopg_pool.AsyncConnectionPool`` (or None), the usual pool.
            psycopg_pool's pools themselves run on asyncio only, so an AnyIO
            pool plays either part; any other factory is refused.
    """

    def __init__(
        self,
        conninfo: str = "",
        *,
        max_size: int = 10,
        min_size: int = 0,
        connect_kwargs: Mapping[str, Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        json_dumps: Callable[[Any], str] | None = None,
        json_loads: Callable[[str | bytes], Any] | None = None,
        pool_factory: Callable[..., Any] | None = None,
    ) -> None:
        if pool_factory not in _POOL_FACTORIES:
            raise TypeError(
                "pool_factory must be psycopg_pool.AsyncConnectionPool or "
                f"psycopg_pool.AsyncNullConnectionPool, not {pool_factory!r}: "
                "psycopg_pool's pools run on asyncio only, the connector uses "
                "its own AnyIO pool"
            )
        self.keep_idle = pool_factory is not psycopg_pool.AsyncNullConnectionPool
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, not {max_size}")
        if not 0 <= min_size <= max_size:
            raise ValueError(
                f"need 0 <= min_size <= max_size, not min_size={min_size}, "
                f"max_size={max_size}"
            )
        for name, value in (("json_dumps", json_dumps), ("json_loads", json_loads)):
            if value is not None and not callable(value):
                raise TypeError(f"{name} must be callable, not {value!r}")
        self.conninfo = conninfo
        self.max_size = max_size
        self.min_size = min_size
        self.connect_kwargs: dict[str, Any] = {
            **(kwargs or {}),
            **(connect_kwargs or {}),
        }
        self.json_dumps = json_dumps
        self.json_loads = json_loads
        if "context" not in self.connect_kwargs:
            self.connect_kwargs["context"] = (
                _DEFAULT_CONTEXT
                if json_loads is None
                else _json_loading_context(json_loads)
            )
        self._secrets = secrets_of(conninfo, self.connect_kwargs)
        self._pooler = PoolerDetection(self.connect_kwargs)
        self._pool: ConnectionPool | None = None

    def __repr__(self) -> str:
        return f"PsycopgConnector(max_size={self.max_size})"

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    async def open_async(self) -> None:
        if self._pool is not None:
            return
        pool = ConnectionPool(
            self.conninfo,
            max_size=self.max_size,
            connect_kwargs=self.connect_kwargs,
            configure=self._pooler.configure_async,
            keep_idle=self.keep_idle,
        )
        try:
            await pool.open()
        except psycopg.Error as exc:
            raise self._connect_error(exc) from cause_of(exc, self._secrets)
        self._pool = pool

    async def close_async(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def get_sync_connector(self) -> SyncPsycopgConnector:
        return SyncPsycopgConnector(self.conninfo, connect_kwargs=self.connect_kwargs)

    async def connect_listener(self) -> AnyioConnection[Any]:
        """A new connection outside the pool, for LISTEN (its owner closes it)."""
        try:
            conn = await connect(self.conninfo, **self.connect_kwargs)
        except psycopg.Error as exc:
            raise self._connect_error(exc) from cause_of(exc, self._secrets)
        return conn

    def _connect_error(self, exc: psycopg.Error) -> ConnectorException:
        return connector_error("Could not connect to PostgreSQL: ", exc, self._secrets)

    async def _run(self, op: _ops.Operation[T]) -> T:
        if self._pool is None:
            op.close()
            raise AppNotOpen(
                "The connector is not open: use `async with app.open_async():`"
            )
        try:
            async with self._pool.connection() as conn:
                return await run_operation_async(conn, op)
        except psycopg.Error as exc:
            # Connecting failed (the operation's own errors are translated
            # already): the message may quote the connection string.
            raise _ops.translate_error(exc, self._secrets) from cause_of(
                exc, self._secrets
            )

    async def job_cancel(self, params: CancelParams, *, connection: Any = None) -> bool:
        if connection is None:
            return await self._run(_ops.job_cancel(params))
        op = _ops.in_callers_transaction(connection, _ops.job_cancel(params))
        return await run_operation_async(connection, op)

    async def job_defer_many(
        self, jobs: Sequence[JobToDefer], *, connection: Any = None
    ) -> list[int]:
        if connection is None:
            return await self._run(_ops.job_defer_many(jobs))
        op = _ops.in_callers_transaction(connection, _ops.job_defer_many(jobs))
        return await run_operation_async(connection, op)

    async def job_abort_requested_many(self, job_ids: Sequence[int]) -> list[int]:
        return await self._run(_ops.job_abort_requested_many(job_ids))

    async def job_fetch_many(self, params: FetchParams) -> list[Job]:
        return await self._run(_ops.job_fetch_many(params))

    async def job_finish_many(self, outcomes: Sequence[JobOutcome]) -> list[int]:
        return await self._run(_ops.job_finish_many(outcomes, self.json_dumps))

    async def job_delete_old(self, params: DeleteOldParams) -> int:
        return await self._run(_ops.job_delete_old(params))

    async def job_get(self, job_id: int) -> Job | None:
        return await self._run(_ops.job_get(job_id))

    async def job_list(self, filters: JobFilter) -> list[Job]:
        return await self._run(_ops.job_list(filters))

    async def job_list_stalled(self, stalled_worker_timeout: float) -> StalledJobs:
        return await self._run(_ops.job_list_stalled(stalled_worker_timeout))

    async def job_move_from_procrastinate(
        self, params: MoveParams
    ) -> ProcrastinateMove:
        return await self._run(_ops.job_move_from_procrastinate(params))

    async def job_next_scheduled_at(
        self, queues: Sequence[str] | None
    ) -> datetime.datetime | None:
        return await self._run(_ops.job_next_scheduled_at(queues))

    async def job_wait_begin(self, job_id: int) -> int:
        return await self._run(_ops.job_wait_begin(job_id))

    async def job_wait_end(self, waiter_id: int) -> None:
        await self._run(_ops.job_wait_end(waiter_id))

    async def job_retry(self, params: RetryParams) -> bool:
        return await self._run(_ops.job_retry(params))

    async def job_stats(
        self, group_by: Literal["queue", "task", "lock"], filters: JobFilter
    ) -> list[GroupStats]:
        return await self._run(_ops.job_stats(group_by, filters))

    async def listen(
        self,
        on_notification: Callable[[Notification], object],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """LISTEN on a dedicated connection (a query on a connection inside
        ``notifies()`` would wait for the iteration to end).

        Cancellation: the connection is closed, shielded.
        """
        conn = await self.connect_listener()
        try:
            try:
                await conn.execute(_ops.Statement("listen").query())
                # Prove that notifications arrive (they do not through a
                # pooler in transaction mode): one sent from another
                # connection must come back.
                probe = _json.dumps({"t": "probe", "n": secrets.token_hex(8)})
                await self._run(_ops.listen_probe(probe))
                async with aclosing(conn.notifies()) as notifies:
                    with anyio.move_on_after(LISTEN_PROBE_TIMEOUT_SECONDS) as wait:
                        async for notify in notifies:
                            if notify.payload == probe:
                                break
                            _dispatch(notify.payload, on_notification)
                    if wait.cancelled_caught:
                        raise ConnectorException(LISTEN_UNSUPPORTED, transient=False)
                    task_status.started()
                    async for notify in notifies:
                        _dispatch(notify.payload, on_notification)
            except psycopg.Error as exc:
                raise connector_error(
                    "Lost the LISTEN connection: ", exc, self._secrets
                ) from cause_of(exc, self._secrets)
            raise ConnectorException("The LISTEN connection stopped delivering")
        finally:
            with anyio.CancelScope(shield=True):
                await conn.close()

    async def maintenance_run(self, params: MaintenanceParams) -> MaintenanceResult:
        return await self._run(_ops.maintenance_run(params))

    async def periodic_defer(self, params: PeriodicDeferParams) -> int | None:
        return await self._run(_ops.periodic_defer(params))

    async def queue_list_paused(self) -> list[PausedQueue]:
        return await self._run(_ops.queue_list_paused())

    async def queue_pause(self, queue: str) -> bool:
        return await self._run(_ops.queue_pause(queue))

    async def queue_resume(self, queue: str) -> bool:
        return await self._run(_ops.queue_resume(queue))

    async def schema_applied_migrations(self) -> list[str] | None:
        return await self._run(_ops.schema_applied_migrations())

    async def schema_apply(
        self, schema_sql: str, migrations: Sequence[tuple[str, str]]
    ) -> list[str]:
        return await self._run(_ops.schema_apply(schema_sql, migrations))

    async def worker_heartbeat(self, worker_id: int) -> bool:
        return await self._run(_ops.worker_heartbeat(worker_id))

    async def worker_register(
        self, name: str, queues: Sequence[str] | None, worker_id: int | None = None
    ) -> int:
        return await self._run(_ops.worker_register(name, queues, worker_id))

    async def worker_unregister(self, worker_id: int) -> None:
        await self._run(_ops.worker_unregister(worker_id))


def _dispatch(payload: str, on_notification: Callable[[Notification], object]) -> None:
    notification = _ops.parse_notification(payload)
    if notification is not None:
        on_notification(notification)


_POOL_FACTORIES: Final = (
    None,
    psycopg_pool.AsyncConnectionPool,
    psycopg_pool.AsyncNullConnectionPool,
)


def _json_loading_context(loads: Callable[[str | bytes], Any]) -> AdaptersMap:
    """Adapters that read json and jsonb columns with ``loads``."""
    adapters = AdaptersMap(psycopg.adapters)
    set_json_loads(loads, adapters)
    return adapters


_DEFAULT_CONTEXT: Final = _json_loading_context(_json.loads)
"""Without ``json_loads``: our :func:`._json.loads`, faster than psycopg's
default (``json.loads`` on bytes) for the arguments of every claimed job."""
