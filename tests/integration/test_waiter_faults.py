"""A waiter whose connections are terminated (``pg_terminate_backend``)
while it waits, on asyncio and trio: ``wait_for_job_async`` (its idle pool
connections, the notification hub's LISTEN connection, both, or the pool
connection of its read of the job while that read waits for a lock) and the
sync ``wait_for_job`` (its dedicated LISTEN connection). Each time the job
then finishes and the waiter returns it, neither raising nor hanging.

The point is known: the waiter has registered (its ``pa_job_waiters`` row
exists) and listens, or its read is waiting for the lock; the job has not
run yet (no worker runs); the backends are terminated and gone
(``pg_terminate_backend`` with a timeout waits for them to exit); only then
does a worker, of another app, run the job.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import procrastinate_anyio as pa
from procrastinate_anyio import Status
from procrastinate_anyio.connectors.postgres import connect
from tests.support import PG_HANG_GUARD_SECONDS

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

pytestmark = pytest.mark.anyio

LISTENER = "query LIKE '%LISTEN pa_events%'"
POOL_HIT = frozenset({"pool_discard", "wait_for_job_retry"})
"""The logs of a terminated pool connection: dropped when next lent, or, if
the waiter's once-a-second read of its job was in flight, that read retried."""
LISTENER_HIT = frozenset({"listener_reconnect"})
TARGETS = {
    "pool": (f"NOT ({LISTENER})", [POOL_HIT]),
    "listener": (LISTENER, [LISTENER_HIT]),
    "both": ("true", [POOL_HIT, LISTENER_HIT]),
}


async def admin(dsn: str, query: str) -> list[dict[str, Any]]:
    async with await connect(dsn) as conn:
        cursor = await conn.execute(query.encode())
        return await cursor.fetchall() if cursor.description else []


async def terminate(dsn: str, where: str) -> int:
    """Terminate the other backends of the test database matching ``where``,
    and wait until they are gone."""
    rows = await admin(
        dsn,
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) AS n"
        " FROM pg_stat_activity WHERE datname = current_database()"
        f" AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        f" AND ({where})",
    )
    n: int = rows[0]["n"]
    return n


async def poll(condition: Callable[[], Awaitable[bool]]) -> None:
    """Until ``condition()`` holds (bounded by the caller's hang guard)."""
    while True:
        if await condition():
            return
        await anyio.sleep(0.01)


async def waiter_rows(dsn: str) -> int:
    rows = await admin(dsn, "SELECT count(*) AS n FROM pa_job_waiters")
    n: int = rows[0]["n"]
    return n


def make_app(dsn: str) -> pa.App:
    app = pa.App(connector=pa.PsycopgConnector(dsn, max_size=4))

    @app.task(name="double")
    async def double(x: int) -> int:
        return 2 * x

    return app


async def run_the_job(dsn: str) -> None:
    """A worker of another app (its connections untouched) runs the job."""
    app = make_app(dsn)
    async with app.open_async():
        await app.run_worker(wait=False, install_signal_handlers=False)


@pytest.mark.parametrize("target", list(TARGETS))
async def test_async_waiter_outlives_terminated_connections(
    pg_dsn: str, target: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``wait_for_job_async`` registered and listening; its pool connection,
    its LISTEN connection or both are terminated; the job then runs and the
    waiter returns it succeeded, and leaves no registration."""
    caplog.set_level(logging.INFO, logger="procrastinate_anyio")
    where, expected = TARGETS[target]
    app = make_app(pg_dsn)
    hub = app.job_manager.notifications
    results: list[pa.Job] = []

    async def wait(job_id: int) -> None:
        results.append(await app.job_manager.wait_for_job_async(job_id))

    async def registered() -> bool:
        return hub.listening and await waiter_rows(pg_dsn) == 1

    with anyio.fail_after(PG_HANG_GUARD_SECONDS):
        async with app.open_async():
            job_id = await app.get_task("double").defer_async(x=21)
            async with anyio.create_task_group() as tg:
                tg.start_soon(wait, job_id)
                await poll(registered)
                assert await terminate(pg_dsn, where) >= 1
                if LISTENER_HIT in expected:  # it listens again first
                    await poll(lambda: hub_reconnected(app))
                await run_the_job(pg_dsn)
    (job,) = results
    assert (job.id, job.status, job.result) == (job_id, Status.SUCCEEDED, 42)
    assert await waiter_rows(pg_dsn) == 0
    seen = actions(caplog)
    assert all(hit & seen for hit in expected)  # the faults did hit the waiter


async def hub_reconnected(app: pa.App) -> bool:
    stats = app.job_manager.notifications.statistics()
    return stats.reconnections >= 1 and stats.listening


def actions(caplog: pytest.LogCaptureFixture) -> set[str]:
    return {getattr(record, "action", "") for record in caplog.records}


async def test_async_waiter_outlives_a_connection_terminated_mid_query(
    pg_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``wait_for_job_async``'s read of its job is stuck behind a table lock
    when its connection is terminated: the read fails, is retried on a new
    connection, and once the lock goes the waiter returns the job."""
    app = make_app(pg_dsn)
    results: list[pa.Job] = []

    async def wait(job_id: int) -> None:
        results.append(await app.job_manager.wait_for_job_async(job_id))

    async def read_blocked() -> bool:
        rows = await admin(
            pg_dsn,
            "SELECT count(*) AS n FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        return bool(rows[0]["n"])

    with anyio.fail_after(PG_HANG_GUARD_SECONDS):
        async with app.open_async():
            job_id = await app.get_task("double").defer_async(x=21)
            async with (
                await connect(pg_dsn, autocommit=False) as locker,
                anyio.create_task_group() as tg,
            ):
                await locker.execute("LOCK TABLE pa_jobs IN ACCESS EXCLUSIVE MODE")
                tg.start_soon(wait, job_id)
                await poll(read_blocked)
                assert await terminate(pg_dsn, "wait_event_type = 'Lock'") == 1
                await poll(read_blocked)  # again, on a new connection
                await locker.rollback()
                await run_the_job(pg_dsn)
    (job,) = results
    assert (job.id, job.status, job.result) == (job_id, Status.SUCCEEDED, 42)
    assert await waiter_rows(pg_dsn) == 0
    assert "wait_for_job_retry" in actions(caplog)


async def test_sync_waiter_outlives_a_terminated_connection(
    pg_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The sync ``wait_for_job`` (in a thread), registered on its dedicated
    LISTEN connection; every connection of its app is terminated; the job
    then runs and the waiter returns it succeeded, and leaves no
    registration."""
    app = make_app(pg_dsn)
    results: list[pa.Job] = []

    def wait(job_id: int) -> None:
        results.append(app.job_manager.wait_for_job(job_id))

    with anyio.fail_after(PG_HANG_GUARD_SECONDS), app.open():
        job_id = app.get_task("double").defer(x=21)
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, wait, job_id)

            async def registered() -> bool:
                return await waiter_rows(pg_dsn) == 1

            await poll(registered)
            assert await terminate(pg_dsn, "true") >= 1
            await run_the_job(pg_dsn)
    (job,) = results
    assert (job.id, job.status, job.result) == (job_id, Status.SUCCEEDED, 42)
    assert await waiter_rows(pg_dsn) == 0
    assert "wait_for_job_reconnect" in actions(caplog)
