"""Waiting for results at scale, on PostgreSQL: every waiter of an app and
its worker share one LISTEN connection, so more concurrent waiters than the
server allows connections get their results; a cancelled waiter leaves no
registration behind."""

from __future__ import annotations

import functools

import anyio
import anyio.abc
import psycopg
import pytest

import procrastinate_anyio as pa
from tests.support import PG_HANG_GUARD_SECONDS

pytestmark = pytest.mark.anyio

POOL_SIZE = 4
SAMPLER = "pa-test-connection-sampler"
WAITERS = 150
"""More than PostgreSQL's default max_connections (100): a LISTEN per waiter
would be refused."""


def database_connections(dsn: str) -> int:
    """Connections to ``dsn``'s database, seen from another connection. The
    sampler's own are left out: the backend of the previous sample may still
    be ending when the next one looks (seen under load)."""
    with psycopg.connect(dsn, autocommit=True, application_name=SAMPLER) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name <> %s",
            [SAMPLER],
        ).fetchone()
    assert row is not None
    return int(row[0])


def waiter_rows(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pa_job_waiters").fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def app(pg_dsn: str) -> pa.App:
    app = pa.App(connector=pa.PsycopgConnector(pg_dsn, max_size=POOL_SIZE))

    @app.task(name="double")
    async def double(x: int) -> int:
        return 2 * x

    return app


async def test_many_waiters_share_one_listen(app: pa.App, pg_dsn: str) -> None:
    """150 concurrent waiters next to a worker: every result arrives, and the
    database never sees more than the pool plus one LISTEN connection."""
    most = 0
    results: dict[int, object] = {}

    async def sample(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        nonlocal most
        task_status.started()
        while True:
            most = max(
                most, await anyio.to_thread.run_sync(database_connections, pg_dsn)
            )
            await anyio.sleep(0.01)

    async def wait(x: int) -> None:
        task = app.get_task("double")
        job_id = await task.defer_async(x=x)
        job = await app.job_manager.wait_for_job_async(job_id)
        results[x] = job.result

    with anyio.fail_after(PG_HANG_GUARD_SECONDS):
        async with app.open_async(), anyio.create_task_group() as tg:
            worker = await tg.start(
                functools.partial(
                    app.run_worker, concurrency=10, install_signal_handlers=False
                )
            )
            await tg.start(sample)
            async with anyio.create_task_group() as crowd:
                for x in range(WAITERS):
                    crowd.start_soon(wait, x)
            worker.stop()
            tg.cancel_scope.cancel()

    assert results == {x: 2 * x for x in range(WAITERS)}
    assert 0 < most <= POOL_SIZE + 1
    assert waiter_rows(pg_dsn) == 0
    assert app.job_manager.notifications.statistics().subscribers == 0


async def test_a_cancelled_waiter_leaves_nothing_behind(
    app: pa.App, pg_dsn: str
) -> None:
    """A waiter cancelled before its job runs removes its row and its
    subscription; the hub is idle again."""
    registered = anyio.Event()
    begin = app.connector.job_wait_begin

    async def registering(job_id: int) -> int:
        waiter_id = await begin(job_id)
        registered.set()
        return waiter_id

    app.connector.job_wait_begin = registering  # type: ignore[method-assign]  # a spy
    async with app.open_async():
        job_id = await app.get_task("double").defer_async(x=1)
        with anyio.fail_after(PG_HANG_GUARD_SECONDS):
            async with anyio.create_task_group() as tg:
                tg.start_soon(app.job_manager.wait_for_job_async, job_id)
                await registered.wait()
                assert waiter_rows(pg_dsn) == 1
                assert app.job_manager.notifications.statistics().hosted
                tg.cancel_scope.cancel()

    assert waiter_rows(pg_dsn) == 0
    stats = app.job_manager.notifications.statistics()
    assert (stats.subscribers, stats.hosted, stats.listening) == (0, False, False)
