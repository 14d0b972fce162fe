"""A small AnyIO connection pool of :class:`AnyioConnection`
(``psycopg_pool`` is asyncio-only)."""

from __future__ import annotations

import logging
from collections import deque
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final

import anyio
import attrs
from psycopg import errors as e
from psycopg.rows import DictRow, dict_row

from ._connection import (
    _IDLE,
    _INERROR,
    _INTRANS,
    _OK,
    _WAIT_R,
    AnyioConnection,
    _ready_now,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
    from types import TracebackType

    from psycopg import BaseConnection
    from typing_extensions import Self

__all__ = ["ConnectionPool", "PoolClosed", "PoolStatistics"]

logger = logging.getLogger("procrastinate_anyio.pg")

POOL_RESET_TIMEOUT_SECONDS: Final = 5.0
"""Bound on the ROLLBACK of a connection returned to the pool mid-transaction."""


class PoolClosed(RuntimeError):
    """The pool is not open: ``open()`` was not awaited, or ``close()`` was."""


@attrs.frozen
class PoolStatistics:
    """A snapshot of a `ConnectionPool`.

    Attributes:
        size: Connections open (``idle + in_use``).
        idle: Connections waiting in the pool.
        in_use: Connections handed out (or being opened for a caller).
        max_size: The most connections the pool opens at once.
    """

    size: int
    idle: int
    in_use: int
    max_size: int


class ConnectionPool:
    """A small pool of `AnyioConnection` (``psycopg_pool`` is asyncio-only).

    Connections are opened on demand up to ``max_size``, in autocommit mode with
    dict rows; a caller that needs a transaction uses ``conn.transaction()``.
    A connection comes back to the pool only if it is healthy and IDLE: one
    left in a transaction is rolled back, a broken one is closed and replaced
    on the next request. A connection that ran LISTEN keeps listening: use
    `connect` for a listener.

    Usage::

        pool = ConnectionPool("postgresql:///app", max_size=5)
        async with pool:
            async with pool.connection() as conn:
                await conn.execute("select 1")
    """

    def __init__(
        self,
        conninfo: str,
        *,
        max_size: int = 10,
        connect_kwargs: Mapping[str, Any] | None = None,
        configure: Callable[[AnyioConnection[DictRow]], Awaitable[None]] | None = None,
        keep_idle: bool = True,
    ) -> None:
        """Configure the pool; nothing is opened until `open`.

        Args:
            conninfo: A libpq connection string or URI.
            max_size: The most connections open at once (at least 1).
            connect_kwargs: Extra arguments for `AnyioConnection.connect`
                (libpq parameters such as ``application_name``,
                ``prepare_threshold``). ``autocommit`` and ``row_factory`` are
                fixed by the pool.
            configure: Awaited with each new connection before its first use
                (it must leave the connection idle).
            keep_idle: False to close each connection when it is returned
                (no connection stays open between operations).

        Raises:
            ValueError: ``max_size`` is below 1, or ``connect_kwargs`` sets
                ``autocommit`` or ``row_factory``.
        """
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {max_size}")
        kwargs = dict(connect_kwargs or {})
        if fixed := {"autocommit", "row_factory"} & kwargs.keys():
            raise ValueError(f"the pool sets {', '.join(sorted(fixed))} itself")
        self._conninfo = conninfo
        self._connect_kwargs = kwargs
        self._configure = configure
        self._max_size = max_size
        self._keep_idle = keep_idle
        # Fast acquire: a free slot is taken without a turn of the event loop
        # (still a cancellation point); the query that follows yields anyway.
        self._slots = anyio.Semaphore(max_size, fast_acquire=True)
        self._idle: deque[AnyioConnection[DictRow]] = deque()
        self._in_use = 0
        self._opened = False
        self._closed = False

    async def open(self) -> None:
        """Open one connection now, so that an unreachable server fails fast.

        Raises:
            psycopg.OperationalError: The server cannot be reached.
            PoolClosed: The pool was closed.
        """
        if self._closed:
            raise PoolClosed("the pool is closed")
        if self._opened:
            return
        conn = await self._connect()
        if self._keep_idle:
            self._idle.append(conn)
        else:
            await conn.close()
        self._opened = True

    async def close(self) -> None:
        """Close the idle connections; those in use are closed when returned."""
        self._closed = True
        while self._idle:
            await self._idle.pop().close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AnyioConnection[DictRow]]:
        """Borrow a connection, waiting for one when ``max_size`` are in use.

        Yields:
            An autocommit connection returning dict rows.

        Raises:
            PoolClosed: The pool is not open.
            psycopg.OperationalError: A new connection could not be opened.

        Cancellation:
            The connection is always returned: the clean-up (ROLLBACK within
            ``POOL_RESET_TIMEOUT_SECONDS``, or close) is shielded.
        """
        self._check_open()
        async with self._slots:
            self._check_open()
            self._in_use += 1
            try:
                conn = self._pop_idle()
                if conn is None:
                    conn = await self._connect()
                try:
                    yield conn
                finally:
                    with anyio.CancelScope(shield=True):
                        await self._put_back(conn)
            finally:
                self._in_use -= 1

    def statistics(self) -> PoolStatistics:
        """Return a snapshot of the pool's connections."""
        idle = len(self._idle)
        return PoolStatistics(
            size=idle + self._in_use,
            idle=idle,
            in_use=self._in_use,
            max_size=self._max_size,
        )

    def _check_open(self) -> None:
        if self._closed:
            raise PoolClosed("the pool is closed")
        if not self._opened:
            raise PoolClosed("the pool is not open: await pool.open() first")

    async def _connect(self) -> AnyioConnection[DictRow]:
        conn = await AnyioConnection[DictRow].connect(
            self._conninfo,
            autocommit=True,
            row_factory=dict_row,
            **self._connect_kwargs,
        )
        if self._configure is not None:
            try:
                await self._configure(conn)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await conn.close()
                raise
        return conn

    def _pop_idle(self) -> AnyioConnection[DictRow] | None:
        """Return the most recently used healthy idle connection, dropping dead ones."""
        while self._idle:
            conn = self._idle.pop()
            if _is_alive(conn):
                return conn
            logger.info(
                "discarding a broken idle connection", extra={"action": "pool_discard"}
            )
            if not conn.closed:
                conn._finish()
        return None

    async def _put_back(self, conn: AnyioConnection[DictRow]) -> None:
        if self._closed or not self._keep_idle or not _is_reusable(conn):
            await conn.close()
            return
        if conn.pgconn.transaction_status in (_INTRANS, _INERROR):
            with anyio.move_on_after(POOL_RESET_TIMEOUT_SECONDS):
                try:
                    await conn.rollback()
                except Exception as ex:
                    logger.warning(
                        "rollback of a returned connection failed: %s",
                        ex,
                        extra={"action": "pool_rollback_failed"},
                    )
        if conn.closed or conn.pgconn.transaction_status != _IDLE:
            await conn.close()
        else:
            self._idle.append(conn)


def _is_reusable(conn: AnyioConnection[Any]) -> bool:
    """Whether a returned connection may be reset and kept."""
    return (
        not conn.closed
        and conn.pgconn.status == _OK
        and conn.autocommit
        and conn._pipeline is None
        # Held lock: a notifies() generator was left open on it.
        and conn.lock.value == 1  # type: ignore[attr-defined]  # an anyio.Semaphore, see __init__
    )


def _is_alive(conn: BaseConnection[Any]) -> bool:
    """Whether an idle connection (async or sync) still has a live server on
    the other end.

    An idle connection has nothing to read unless the server closed it (a FATAL
    message, then end of file) or sent a notification: read what is there,
    which costs no round trip and fails on end of file.
    """
    pgconn = conn.pgconn
    if conn.closed or pgconn.status != _OK or pgconn.transaction_status != _IDLE:
        return False
    try:
        for _ in range(3):  # data, then end of file: at most a couple of reads
            if not _ready_now(pgconn.socket, _WAIT_R):
                break
            pgconn.consume_input()
    except e.OperationalError:
        return False
    return pgconn.status == _OK
