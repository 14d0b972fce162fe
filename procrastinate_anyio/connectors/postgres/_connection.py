"""PostgreSQL connections and a connection pool that run on any AnyIO backend.

This is the only module of the library that touches psycopg's async machinery.

Why a subclass
--------------
``psycopg.AsyncConnection`` is tied to asyncio in four places: its wait loop
(``loop.add_reader``), its connection lock (``asyncio.Lock``), its host name
resolution (``loop.getaddrinfo``) and its cancel-on-interrupt handling (it only
recognises ``asyncio.CancelledError``). Under Trio it fails at connect with
"no running event loop". Upstream Trio support is psycopg issue #29 (open; an
AnyIO pull request was closed unmerged), and ``psycopg_pool`` is asyncio-only.

A spike (psycopg 3.3.9, anyio 4.16, Trio 0.35) showed that replacing exactly
those four pieces is enough for the whole psycopg feature set (queries,
transactions, pipelines, COPY, server-side cursors, LISTEN/NOTIFY) to behave the
same on asyncio and Trio, and faster on Trio than stock psycopg on asyncio:

1. ``wait()`` drives psycopg's I/O generators with ``anyio.wait_readable`` and
   ``anyio.wait_writable`` on the raw socket. A read+write wait (a send with a
   full buffer) polls first, then races the two waits.
2. ``connect()`` is rebuilt on ``_connect_gen()``; DNS and multi-host attempts
   run through ``conninfo_attempts`` in a worker thread.
3. The lock is an ``anyio.Semaphore(1)``: ``asyncio.Lock`` fails on Trio when
   contended, and ``anyio.Lock`` checks its owner, which breaks when psycopg
   releases it from an async generator's finaliser (``notifies()`` left early).
4. AnyIO cancellation is level-triggered: every await inside a cancelled scope
   raises again, so psycopg's own clean-up (cancel the query, drain the result,
   ROLLBACK) would itself be cancelled and the connection closed or left
   INERROR. That clean-up runs here in a shielded, bounded scope, and so do
   transaction and connection exits.

A cancel scope costs 25 µs (asyncio) to 60 µs (Trio) per round trip, so none is
created on the query path: scopes only appear in the ``except`` branch, in
exits and when a timeout is asked for.

Private API
-----------
This relies on psycopg private API: ``_connect_gen``, ``_cancel_gen``,
``_should_cancel``, ``_get_connection_params``, ``_adapters``,
``_conninfo_attempts.conninfo_attempts``, ``errors._WaitTimeout`` and the
contract of the ``wait()`` hook, which changed in 3.3.6. The dependency is
pinned to ``psycopg>=3.3.6,<3.4``; run the whole suite on both backends before
widening it.
"""

from __future__ import annotations

import logging
import select
from contextlib import asynccontextmanager
from time import monotonic
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.lowlevel
import psycopg
from psycopg import errors as e
from psycopg import pq
from psycopg._conninfo_attempts import conninfo_attempts
from psycopg.adapt import AdaptersMap
from psycopg.conninfo import make_conninfo, timeout_from_conninfo
from psycopg.rows import DictRow, Row, dict_row
from psycopg.waiting import Ready, Wait

from ..._backoff import Backoff

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from types import TracebackType

    from psycopg.abc import RV, AdaptContext, ConnParam, PQGen, PQGenConn
    from psycopg.cursor_async import AsyncCursor
    from psycopg.rows import AsyncRowFactory
    from psycopg.transaction import AsyncTransaction
    from typing_extensions import Self

__all__ = [
    "AnyioConnection",
    "connect",
]

logger = logging.getLogger("procrastinate_anyio.pg")

CANCEL_TIMEOUT_SECONDS: Final = 5.0
"""Bound on cancelling an interrupted query server-side and draining its result."""

CANCEL_RETRY_FIRST_SECONDS: Final = 0.05
"""Wait for a cancelled query's result this long before repeating the cancel..."""

CANCEL_RETRY_MAX_SECONDS: Final = 1.0
"""...doubling the wait each time, up to this."""

EXIT_TIMEOUT_SECONDS: Final = 10.0
"""Bound on the COMMIT/ROLLBACK of a transaction or connection exit."""

MAX_BUSY_SECONDS: Final = 0.005
"""How long ``wait()`` may run without yielding (psycopg's ``MAX_BUSY_TIME``)."""

_WAIT_R: Final = Wait.R
_WAIT_W: Final = Wait.W
_READY_R: Final = Ready.R
_READY_W: Final = Ready.W
_READY_NONE: Final = Ready.NONE
_POLL_READ: Final = select.POLLIN | select.POLLERR | select.POLLHUP
_POLL_WRITE: Final = select.POLLOUT | select.POLLERR | select.POLLHUP

_OK: Final = pq.ConnStatus.OK
_ACTIVE: Final = pq.TransactionStatus.ACTIVE
_IDLE: Final = pq.TransactionStatus.IDLE
_INTRANS: Final = pq.TransactionStatus.INTRANS
_INERROR: Final = pq.TransactionStatus.INERROR

# When wait() last gave control to the event loop (see MAX_BUSY_SECONDS).
_last_yield = 0.0


# --- Driving psycopg generators -------------------------------------------------


def _ready_now(fd: int, s: int) -> int:
    """Return which of the waits in ``s`` ``fd`` satisfies now, without blocking.

    ``poll()``, not ``select()``: no ``FD_SETSIZE`` limit.
    """
    p = select.poll()
    p.register(
        fd,
        (select.POLLIN if s & _WAIT_R else 0) | (select.POLLOUT if s & _WAIT_W else 0),
    )
    ready: int = _READY_NONE
    for _, ev in p.poll(0):
        if s & _WAIT_R and ev & _POLL_READ:
            ready |= _READY_R
        if s & _WAIT_W and ev & _POLL_WRITE:
            ready |= _READY_W
    return ready


async def _wait_fd(fd: int, s: int) -> int:
    """Wait until ``fd`` satisfies one of the waits in ``s``; return which."""
    global _last_yield
    try:
        if s == _WAIT_R:
            await anyio.wait_readable(fd)
            _last_yield = monotonic()
            return _READY_R
        # A socket asked for writing is nearly always writable: poll first, as
        # psycopg does, and only yield when the loop has been starved too long.
        if ready := _ready_now(fd, s):
            if monotonic() - _last_yield >= MAX_BUSY_SECONDS:
                # Shielded: the I/O already happened, reporting a cancel now would
                # lose its result.
                await anyio.lowlevel.cancel_shielded_checkpoint()
                _last_yield = monotonic()
            return ready
        if s == _WAIT_W:
            await anyio.wait_writable(fd)
            _last_yield = monotonic()
            return _READY_W
        return await _wait_read_or_write(fd)
    except (anyio.ClosedResourceError, anyio.BusyResourceError) as ex:
        raise e.OperationalError(f"connection socket unusable: {ex!r}") from ex


async def _wait_read_or_write(fd: int) -> int:
    """Race a read wait against a write wait (send phase with a full buffer)."""
    global _last_yield
    ready: int = _READY_NONE

    async def one(waiter: Any, flag: int, scope: anyio.CancelScope) -> None:
        nonlocal ready
        await waiter(fd)
        ready |= flag
        scope.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(one, anyio.wait_readable, _READY_R, tg.cancel_scope)
        tg.start_soon(one, anyio.wait_writable, _READY_W, tg.cancel_scope)
    _last_yield = monotonic()
    return ready


async def _drive(gen: PQGen[RV], fd: int) -> RV:
    """Run a psycopg ``PQGen`` (it yields waits on ``fd``) to completion.

    A generator interrupted earlier may be resumed: psycopg's generators treat a
    falsy ``send()`` as "not ready yet" and yield their wait again.
    """
    global _last_yield
    try:
        s = next(gen)
        while True:
            s = gen.send(await _wait_fd(fd, s))
    except StopIteration as ex:
        if monotonic() - _last_yield >= MAX_BUSY_SECONDS:
            await anyio.lowlevel.cancel_shielded_checkpoint()
            _last_yield = monotonic()
        rv: RV = ex.value
        return rv
    except OSError as ex:
        raise e.OperationalError("connection socket closed") from ex


async def _drive_conn(gen: PQGenConn[RV], limit_seconds: float | None) -> RV:
    """Run a psycopg ``PQGenConn`` (it yields ``(fd, wait)``, the fd may change).

    Raises:
        psycopg.errors._WaitTimeout: ``gen`` did not finish in ``limit_seconds``.
    """
    try:
        with anyio.fail_after(limit_seconds):
            try:
                fd, s = next(gen)
                while True:
                    fd, s = gen.send(await _wait_fd(fd, s))
            except StopIteration as ex:
                rv: RV = ex.value
                return rv
            except OSError as ex:
                raise e.OperationalError("connection socket closed") from ex
    except TimeoutError:
        raise e._WaitTimeout("wait timeout expired") from None


async def _drive_limited(gen: PQGen[RV], fd: int, limit_seconds: float) -> RV:
    try:
        with anyio.fail_after(limit_seconds):
            return await _drive(gen, fd)
    except TimeoutError:
        raise e._WaitTimeout("wait timeout expired") from None


# --- The connection -------------------------------------------------------------


class AnyioConnection(psycopg.AsyncConnection[Row]):
    """A ``psycopg.AsyncConnection`` that runs on asyncio and on Trio.

    Use it as the psycopg class it derives from. Differences:

    - cancelling a task mid-query cancels the query server-side and leaves the
      connection usable (IDLE, or INERROR inside a transaction);
    - ``transaction()`` and ``async with conn`` finish (COMMIT/ROLLBACK) even
      when the task is being cancelled, within ``EXIT_TIMEOUT_SECONDS``;
    - ``close()`` wakes a task waiting on the socket (e.g. in ``notifies()``),
      which then raises ``psycopg.OperationalError``.

    LISTEN needs a connection of its own: a query on a connection that is
    inside ``notifies()`` waits until the iteration ends. Consume ``notifies()``
    under ``contextlib.aclosing`` so the connection lock is released promptly.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A semaphore, not anyio.Lock: psycopg may release it from another task
        # (the finaliser of a notifies() generator left early). Fast acquire:
        # taken without a turn of the event loop when free (it still raises
        # if the task is cancelled), one turn less per statement; the
        # statement's own wait yields.
        self.lock = anyio.Semaphore(1, fast_acquire=True)  # type: ignore[assignment]  # psycopg declares asyncio.Lock; only async with is used

    @classmethod
    async def connect(
        cls,
        conninfo: str = "",
        *,
        autocommit: bool = False,
        prepare_threshold: int | None = 5,
        context: AdaptContext | None = None,
        row_factory: AsyncRowFactory[Row] | None = None,
        cursor_factory: type[AsyncCursor[Row]] | None = None,
        **kwargs: ConnParam,
    ) -> Self:
        """Connect to a database server.

        Same arguments as ``psycopg.AsyncConnection.connect``. Host names are
        resolved in a worker thread; each host/address is tried in turn within
        the ``connect_timeout`` of the connection string.

        Raises:
            psycopg.OperationalError: no attempt succeeded (the last error, with
                all attempts listed when there were several).

        Cancellation:
            Safe: a half-open connection is dropped.
        """
        params = await cls._get_connection_params(conninfo, **kwargs)
        timeout = timeout_from_conninfo(params)
        attempts = await anyio.to_thread.run_sync(
            conninfo_attempts, params, abandon_on_cancel=True
        )
        conn: Self | None = None
        errors: list[tuple[e.Error, str]] = []
        for attempt in attempts:
            descr = "host: {!r}, port: {!r}, hostaddr: {!r}".format(
                attempt.get("host"), attempt.get("port"), attempt.get("hostaddr")
            )
            try:
                conn = await _drive_conn(
                    cls._connect_gen(make_conninfo("", **attempt)), timeout
                )
            except e._WaitTimeout:
                errors.append(
                    (e.ConnectionTimeout("connection timeout expired"), descr)
                )
            except e.Error as ex:
                errors.append((ex, descr))
            else:
                break
        if conn is None:
            last = errors[-1][0]
            if len(errors) == 1:
                raise last.with_traceback(None)
            lines = [
                str(last),
                "Multiple connection attempts failed. All failures were:",
            ]
            lines.extend(f"- {descr}: {error}" for error, descr in errors)
            raise type(last)("\n".join(lines), pgconn=last.pgconn).with_traceback(None)

        conn._autocommit = bool(autocommit)
        if row_factory:
            conn.row_factory = row_factory
        if cursor_factory:
            conn.cursor_factory = cursor_factory
        if context:
            conn._adapters = AdaptersMap(context.adapters)
        conn.prepare_threshold = prepare_threshold
        return conn

    async def wait(
        self,
        gen: PQGen[RV],
        interval: float = 0.1,
        timeout: float | None = None,  # noqa: ASYNC109  # psycopg's wait() hook signature
    ) -> RV:
        """Consume a psycopg generator operating on this connection.

        ``interval`` is ignored: the event loop delivers cancellation and
        signals, there is nothing to poll for.

        Raises:
            psycopg.errors._WaitTimeout: ``gen`` did not finish within ``timeout``.

        Cancellation:
            A query interrupted while running is cancelled server-side and its
            result drained (shielded, within ``CANCEL_TIMEOUT_SECONDS``) before
            the cancellation propagates; if that fails the connection is closed.
        """
        try:
            if timeout is None:
                return await _drive(gen, self.pgconn.socket)
            return await _drive_limited(gen, self.pgconn.socket, timeout)
        except BaseException as ex:
            # Not an Exception: a cancellation (trio.Cancelled,
            # asyncio.CancelledError), KeyboardInterrupt or SystemExit.
            if (
                not isinstance(ex, Exception)
                and self.pgconn.transaction_status == _ACTIVE
            ):
                await self._cancel_and_drain(gen)
            raise

    async def _cancel_and_drain(self, gen: PQGen[Any]) -> None:
        """Cancel the running query server-side and consume its result.

        PostgreSQL drops a cancel request that reaches the backend before it
        has read the query (a task cancelled right after sending it), so the
        request is repeated, with backoff, until the result arrives.
        """
        backoff = Backoff(CANCEL_RETRY_FIRST_SECONDS, CANCEL_RETRY_MAX_SECONDS)
        with anyio.CancelScope(shield=True):
            try:
                with anyio.fail_after(CANCEL_TIMEOUT_SECONDS):
                    while True:
                        try:
                            await self.cancel_safe(timeout=CANCEL_TIMEOUT_SECONDS)
                        except Exception as ex:
                            logger.warning(
                                "query cancellation failed: %s",
                                ex,
                                extra={"action": "pg_cancel_failed"},
                            )
                        # Safe to interrupt and resume: see _drive().
                        with anyio.move_on_after(backoff.next()):
                            await _drive(gen, self.pgconn.socket)
                            return
            except e.QueryCanceled:
                pass  # the expected outcome
            except BaseException as ex:
                # Timed out, or failed: the connection is in an unknown state.
                logger.warning(
                    "query not terminated after cancellation (%s): closing connection",
                    type(ex).__name__,
                    extra={"action": "pg_cancel_close"},
                )
                self._finish()
                if not isinstance(ex, Exception):
                    raise

    async def cancel_safe(self, *, timeout: float = 30.0) -> None:  # noqa: ASYNC109  # psycopg's signature
        """Cancel the current operation on the connection (libpq >= 17 protocol).

        Raises:
            psycopg.errors.CancellationTimeout: no answer within ``timeout``.
        """
        if not self._should_cancel():
            return
        if psycopg.capabilities.has_cancel_safe():
            try:
                await _drive_conn(self._cancel_gen(), timeout or None)
            except e._WaitTimeout:
                raise e.CancellationTimeout("cancellation timeout expired") from None
        else:
            await anyio.to_thread.run_sync(self.cancel)

    @asynccontextmanager
    async def transaction(
        self, savepoint_name: str | None = None, force_rollback: bool = False
    ) -> AsyncIterator[AsyncTransaction]:
        """Start a transaction (or a savepoint inside one), as psycopg's.

        Cancellation:
            The COMMIT or ROLLBACK at the exit is shielded and bounded by
            ``EXIT_TIMEOUT_SECONDS``. If it cannot finish the connection is
            closed; the block's exception propagates, or, if the block
            succeeded, ``psycopg.OperationalError`` is raised (commit unknown).
        """
        cm = super().transaction(savepoint_name, force_rollback)
        tx = await cm.__aenter__()
        try:
            yield tx
        except BaseException as ex:
            if not await self._shielded_exit(cm, ex):
                raise
        else:
            await self._shielded_exit(cm, None)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        """Commit (or roll back on error), then close, even when cancelled.

        Cancellation:
            Shielded and bounded by ``EXIT_TIMEOUT_SECONDS``.
        """
        parent = super()
        await self._shielded_exit(parent, exc_val)
        if not self.closed and not getattr(self, "_pool", None):
            await self.close()

    async def _shielded_exit(self, cm: Any, exc: BaseException | None) -> bool:
        """Run ``cm.__aexit__`` shielded and bounded; return whether it swallowed ``exc``."""
        swallowed = False
        with anyio.CancelScope(shield=True) as scope:
            scope.deadline = anyio.current_time() + EXIT_TIMEOUT_SECONDS
            exc_type = type(exc) if exc is not None else None
            tb = exc.__traceback__ if exc is not None else None
            swallowed = bool(await cm.__aexit__(exc_type, exc, tb))
        if scope.cancelled_caught:
            logger.warning(
                "transaction exit timed out: closing connection",
                extra={"action": "pg_exit_timeout"},
            )
            self._finish()
            if exc is None:
                raise e.OperationalError(
                    "transaction exit timed out; the connection was closed"
                )
        return swallowed

    async def close(self) -> None:
        """Close the connection, waking any task waiting on its socket."""
        if not self.closed:
            self._notify_closing()
        await super().close()

    def _notify_closing(self) -> None:
        try:
            fd = self.pgconn.socket
        except e.OperationalError:
            return
        anyio.notify_closing(fd)

    def _finish(self) -> None:
        """Close the libpq connection abruptly (its state is unknown)."""
        self._notify_closing()
        self.pgconn.finish()


async def connect(
    conninfo: str,
    *,
    autocommit: bool = True,
    prepare_threshold: int | None = 5,
    **kwargs: Any,
) -> AnyioConnection[DictRow]:
    """Connect to PostgreSQL, returning rows as dicts.

    Args:
        conninfo: A libpq connection string or URI.
        autocommit: Start in autocommit mode (use ``conn.transaction()`` for
            transactions).
        prepare_threshold: Executions of a query before it is prepared
            server-side; ``None`` disables prepared statements (needed behind
            PgBouncer in transaction mode).
        **kwargs: Further libpq connection parameters.

    Returns:
        An open connection; close it with ``await conn.close()`` or ``async with``.

    Raises:
        psycopg.OperationalError: The server cannot be reached.
    """
    return await AnyioConnection[DictRow].connect(
        conninfo,
        autocommit=autocommit,
        prepare_threshold=prepare_threshold,
        row_factory=dict_row,
        **kwargs,
    )
