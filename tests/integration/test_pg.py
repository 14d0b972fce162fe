"""Tests of the AnyIO PostgreSQL connection and pool against a real server.

Every test runs on asyncio and on Trio. Nothing sleeps to let something happen:
tasks are ordered with events and ``wait_all_tasks_blocked()``; ``fail_after``
only guards against hangs.
"""

from __future__ import annotations

import os
import uuid
from contextlib import aclosing, suppress
from typing import TYPE_CHECKING, Any

import anyio
import psycopg
import pytest
from psycopg import pq
from psycopg.conninfo import make_conninfo

from procrastinate_anyio.connectors.postgres import (
    AnyioConnection,
    ConnectionPool,
    PoolClosed,
    PoolStatistics,
    connect,
)
from tests.support import PG_PROMPT_SECONDS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from psycopg.rows import DictRow

pytestmark = pytest.mark.anyio

IDLE = pq.TransactionStatus.IDLE


@pytest.fixture
def dsn() -> str:
    return os.environ.get("PA_TEST_DSN", "postgresql:///postgres")


@pytest.fixture
async def conn(dsn: str) -> AsyncIterator[AnyioConnection[DictRow]]:
    async with await connect(dsn) as c:
        yield c


@pytest.fixture
async def admin(dsn: str) -> AsyncIterator[AnyioConnection[DictRow]]:
    """A second connection, to observe or terminate the first one."""
    async with await connect(dsn) as c:
        yield c


@pytest.fixture
def app_name() -> str:
    return f"pa-test-{uuid.uuid4().hex[:12]}"


async def fetch_value(
    conn: AnyioConnection[DictRow], query: str, params: Any = None
) -> Any:
    row = await (await conn.execute(query, params)).fetchone()
    assert row is not None
    return next(iter(row.values()))


async def terminate(admin: AnyioConnection[DictRow], pid: int) -> None:
    """Terminate a backend and wait until it is gone (PostgreSQL 14+)."""
    assert await fetch_value(admin, "select pg_terminate_backend(%s, 5000)", (pid,))


# --- AnyioConnection ----------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        pytest.param(None, id="socket"),
        pytest.param("127.0.0.1", id="ip"),
        pytest.param("localhost", id="name"),
    ],
)
async def test_connect(dsn: str, host: str | None) -> None:
    """Connecting works by Unix socket, by IP address and by host name."""
    conninfo = dsn if host is None else make_conninfo(dsn, host=host)
    with anyio.fail_after(PG_PROMPT_SECONDS):
        async with await connect(conninfo) as c:
            assert await fetch_value(c, "select 1") == 1
            if host is not None:
                assert c.info.host == host
    assert c.closed


async def test_connect_refused_port_raises(dsn: str) -> None:
    """A refused connection raises OperationalError promptly."""
    with anyio.fail_after(PG_PROMPT_SECONDS), pytest.raises(psycopg.OperationalError):
        await connect(make_conninfo(dsn, host="127.0.0.1", port=1))


async def test_query_with_params(conn: AnyioConnection[DictRow]) -> None:
    """Queries take parameters and return dict rows."""
    cur = await conn.execute(
        "select %s::int + %s::int as total, %s::text as name", (1, 2, "x")
    )
    assert await cur.fetchall() == [{"total": 3, "name": "x"}]


async def test_transaction_commits(conn: AnyioConnection[DictRow]) -> None:
    """A transaction block that succeeds is committed."""
    await conn.execute("create temp table t (x int)")
    async with conn.transaction():
        await conn.execute("insert into t values (1)")
    assert conn.info.transaction_status == IDLE
    assert await fetch_value(conn, "select count(*) from t") == 1


async def insert_then_raise(
    conn: AnyioConnection[DictRow], error_type: type[BaseException]
) -> None:
    async with conn.transaction():
        await conn.execute("insert into t values (1)")
        raise error_type


@pytest.mark.parametrize(
    ("error_type", "propagates"),
    [
        pytest.param(ValueError, True, id="error"),
        pytest.param(psycopg.Rollback, False, id="explicit-rollback"),
    ],
)
async def test_transaction_rolls_back(
    conn: AnyioConnection[DictRow], error_type: type[BaseException], propagates: bool
) -> None:
    """A raising transaction block rolls back; only psycopg.Rollback is swallowed."""
    await conn.execute("create temp table t (x int)")
    if propagates:
        with pytest.raises(error_type):
            await insert_then_raise(conn, error_type)
    else:
        await insert_then_raise(conn, error_type)
    assert conn.info.transaction_status == IDLE
    assert await fetch_value(conn, "select count(*) from t") == 0


async def test_cancel_mid_query_leaves_connection_idle(
    conn: AnyioConnection[DictRow], admin: AnyioConnection[DictRow]
) -> None:
    """Cancelling a running query returns promptly and leaves the connection usable."""
    with anyio.fail_after(PG_PROMPT_SECONDS):
        with anyio.move_on_after(0.2) as scope:
            await conn.execute("select pg_sleep(5)")
    assert scope.cancelled_caught
    assert conn.info.transaction_status == IDLE
    assert await fetch_value(conn, "select 42") == 42
    state = "select state from pg_stat_activity where pid = %s"
    assert await fetch_value(admin, state, (conn.info.backend_pid,)) == "idle"


async def test_a_cancelled_task_sends_no_statement(
    conn: AnyioConnection[DictRow],
) -> None:
    """The connection's lock is taken without a turn of the event loop, but
    still raises in a cancelled task: the statement is never sent."""
    await conn.execute("create temp table t (x int)")
    with anyio.CancelScope() as scope:
        scope.cancel()
        await conn.execute("insert into t values (1)")
    assert scope.cancelled_caught
    assert conn.info.transaction_status == IDLE
    assert await fetch_value(conn, "select count(*) from t") == 0


async def test_cancel_inside_transaction_rolls_back(
    conn: AnyioConnection[DictRow],
) -> None:
    """Cancelling inside a transaction rolls it back and leaves the connection usable."""
    await conn.execute("create temp table t (x int)")
    with anyio.fail_after(PG_PROMPT_SECONDS):
        with anyio.move_on_after(0.2) as scope:
            async with conn.transaction():
                await conn.execute("insert into t values (1)")
                await conn.execute("select pg_sleep(5)")
    assert scope.cancelled_caught
    assert conn.info.transaction_status == IDLE
    assert await fetch_value(conn, "select count(*) from t") == 0


async def test_listen_notify(
    conn: AnyioConnection[DictRow], admin: AnyioConnection[DictRow]
) -> None:
    """A notification sent while the listener waits is delivered to notifies()."""
    await conn.execute("listen pa_test")
    received: list[psycopg.Notify] = []

    async def consume() -> None:
        async with aclosing(conn.notifies()) as gen:
            async for notify in gen:
                received.append(notify)
                return

    with anyio.fail_after(PG_PROMPT_SECONDS):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await anyio.wait_all_tasks_blocked()
            await admin.execute("select pg_notify('pa_test', 'hello')")
    assert [(n.channel, n.payload) for n in received] == [("pa_test", "hello")]
    assert await fetch_value(conn, "select 1") == 1  # the lock was released


async def test_notifies_timeout_ends_iteration(conn: AnyioConnection[DictRow]) -> None:
    """notifies(timeout=...) ends quietly when nothing arrives."""
    await conn.execute("listen pa_test")
    with anyio.fail_after(PG_PROMPT_SECONDS):
        async with aclosing(conn.notifies(timeout=0.05)) as gen:
            assert [n async for n in gen] == []
    assert conn.info.transaction_status == IDLE


@pytest.mark.parametrize("interruption", ["server-terminate", "client-close"])
async def test_interrupted_listener_raises(
    conn: AnyioConnection[DictRow], admin: AnyioConnection[DictRow], interruption: str
) -> None:
    """notifies() raises promptly when the backend is terminated or the connection closed."""
    await conn.execute("listen pa_test")
    errors: list[Exception] = []

    async def consume() -> None:
        try:
            async with aclosing(conn.notifies()) as gen:
                async for _ in gen:
                    pass
        except psycopg.OperationalError as ex:
            errors.append(ex)

    with anyio.fail_after(PG_PROMPT_SECONDS):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await anyio.wait_all_tasks_blocked()
            if interruption == "server-terminate":
                await terminate(admin, conn.info.backend_pid)
            else:
                await conn.close()
    assert len(errors) == 1
    assert conn.closed


# --- ConnectionPool -------------------------------------------------------------


@pytest.fixture
async def pool(dsn: str, app_name: str) -> AsyncIterator[ConnectionPool]:
    async with ConnectionPool(
        dsn, max_size=3, connect_kwargs={"application_name": app_name}
    ) as p:
        yield p


async def count_backends(
    conn: AnyioConnection[DictRow], app_name: str, state: str = "%"
) -> int:
    query = "select count(*) from pg_stat_activity where application_name = %s and state like %s"
    count: int = await fetch_value(conn, query, (app_name, state))
    return count


async def hold_all(pool: ConnectionPool, n: int) -> list[int]:
    """Borrow ``n`` connections at once (so ``n`` are open); return their pids."""
    pids: list[int] = []
    all_held = anyio.Event()

    async def hold() -> None:
        async with pool.connection() as c:
            pids.append(c.info.backend_pid)
            if len(pids) == n:
                all_held.set()
            await all_held.wait()

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(hold)
    return pids


async def test_pool_rejects_bad_arguments(dsn: str) -> None:
    """max_size below 1, or connect_kwargs fixing autocommit, raise ValueError."""
    with pytest.raises(ValueError, match="max_size"):
        ConnectionPool(dsn, max_size=0)
    with pytest.raises(ValueError, match="autocommit"):
        ConnectionPool(dsn, connect_kwargs={"autocommit": False})


async def test_pool_limits_connections(pool: ConnectionPool, app_name: str) -> None:
    """20 concurrent tasks share at most max_size connections."""
    counts: list[int] = []
    holding = 0
    slots_full = anyio.Event()

    async def work() -> None:
        nonlocal holding
        async with pool.connection() as c:
            holding += 1
            if holding == 3:
                slots_full.set()
            await slots_full.wait()  # the first three hold on until all slots are used
            counts.append(await count_backends(c, app_name))
            assert c.autocommit

    with anyio.fail_after(PG_PROMPT_SECONDS):
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(work)
    assert len(counts) == 20
    assert max(counts) == 3
    assert pool.statistics() == PoolStatistics(size=3, idle=3, in_use=0, max_size=3)


async def test_pool_cancelled_tasks_leave_idle_connections(
    pool: ConnectionPool, admin: AnyioConnection[DictRow], app_name: str
) -> None:
    """Tasks cancelled mid-query return healthy idle connections to the pool."""
    pids = await hold_all(pool, 3)

    async def sleep_in_db() -> None:
        async with pool.connection() as c:
            await c.execute("select pg_sleep(5)")

    with anyio.fail_after(PG_PROMPT_SECONDS):
        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(sleep_in_db)
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
    assert pool.statistics() == PoolStatistics(size=3, idle=3, in_use=0, max_size=3)
    assert await count_backends(admin, app_name, "active") == 0
    assert sorted(await hold_all(pool, 3)) == sorted(pids)  # same connections, reused


async def test_pool_borrow_in_a_cancelled_task_raises(pool: ConnectionPool) -> None:
    """A free connection is lent without a turn of the event loop, but not
    to a cancelled task: nothing is borrowed."""
    borrowed = False
    with anyio.CancelScope() as scope:
        scope.cancel()
        async with pool.connection():
            borrowed = True
    assert scope.cancelled_caught
    assert not borrowed
    assert pool.statistics().in_use == 0


@pytest.mark.parametrize(
    "last_statement",
    [
        pytest.param("select 1", id="intrans"),
        pytest.param("select 1/0", id="inerror"),
    ],
)
async def test_pool_rolls_back_returned_transaction(
    dsn: str, last_statement: str
) -> None:
    """A connection returned inside a transaction is rolled back and reused."""
    async with ConnectionPool(dsn, max_size=1) as pool:
        async with pool.connection() as c:
            pid = c.info.backend_pid
            await c.execute("begin")
            await c.execute("create temp table leftover (x int)")
            with suppress(psycopg.errors.DivisionByZero):
                await c.execute(last_statement)
            assert c.info.transaction_status != IDLE
        async with pool.connection() as c:
            assert c.info.backend_pid == pid
            assert c.info.transaction_status == IDLE
            assert (
                await fetch_value(c, "select to_regclass('pg_temp.leftover')") is None
            )


async def test_pool_replaces_connection_broken_in_use(
    pool: ConnectionPool, admin: AnyioConnection[DictRow]
) -> None:
    """A connection terminated while in use is discarded when returned."""
    with anyio.fail_after(PG_PROMPT_SECONDS):
        async with pool.connection() as c:
            pid = c.info.backend_pid
            await terminate(admin, pid)
            with pytest.raises(psycopg.OperationalError):
                await c.execute("select 1")
        assert pool.statistics().size == 0
        async with pool.connection() as c:
            assert c.info.backend_pid != pid
            assert await fetch_value(c, "select 1") == 1


async def test_pool_replaces_connection_broken_while_idle(
    pool: ConnectionPool, admin: AnyioConnection[DictRow]
) -> None:
    """A connection terminated while idle in the pool is replaced on the next request."""
    with anyio.fail_after(PG_PROMPT_SECONDS):
        (pid,) = await hold_all(pool, 1)
        await terminate(admin, pid)
        async with pool.connection() as c:
            assert c.info.backend_pid != pid
            assert await fetch_value(c, "select 1") == 1
    assert pool.statistics().size == 1


async def test_pool_open_unreachable_raises(dsn: str) -> None:
    """open() fails fast when the server cannot be reached."""
    pool = ConnectionPool(make_conninfo(dsn, host="127.0.0.1", port=1))
    with anyio.fail_after(PG_PROMPT_SECONDS), pytest.raises(psycopg.OperationalError):
        await pool.open()


async def test_pool_use_when_not_open_raises(dsn: str) -> None:
    """A pool raises PoolClosed before open() and after close()."""
    pool = ConnectionPool(dsn)
    with pytest.raises(PoolClosed, match="not open"):
        async with pool.connection():
            pass
    await pool.open()
    await pool.close()
    with pytest.raises(PoolClosed, match="closed"):
        async with pool.connection():
            pass
    with pytest.raises(PoolClosed):
        await pool.open()
    assert pool.statistics().size == 0


async def test_pool_close_closes_connections_in_use_on_return(
    pool: ConnectionPool,
) -> None:
    """A connection in use when the pool closes is closed when returned."""
    async with pool.connection() as c:
        await pool.close()
        assert await fetch_value(c, "select 1") == 1
    assert c.closed
    assert pool.statistics() == PoolStatistics(size=0, idle=0, in_use=0, max_size=3)


async def test_pool_statistics(pool: ConnectionPool) -> None:
    """statistics() counts idle and borrowed connections."""
    assert pool.statistics() == PoolStatistics(size=1, idle=1, in_use=0, max_size=3)
    async with pool.connection():
        assert pool.statistics() == PoolStatistics(size=1, idle=0, in_use=1, max_size=3)
        async with pool.connection():
            assert pool.statistics() == PoolStatistics(
                size=2, idle=0, in_use=2, max_size=3
            )
    assert pool.statistics() == PoolStatistics(size=2, idle=2, in_use=0, max_size=3)
