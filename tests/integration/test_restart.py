"""PostgreSQL restarted under a running worker, on asyncio and trio, on a
private cluster (``private_pg``: the shared test server is never
restarted).

The order is set by database conditions, never by sleeps: some jobs have
succeeded and the worker's slots are all busy with jobs held by a gate when
the server restarts (``pg_ctl restart -m fast``: every session is
terminated); after it, more jobs are deferred through new connections and
through a sync connector opened before the restart, and the gate opens.
"""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING

import anyio
import psycopg
import pytest

import procrastinate_anyio as pa
from procrastinate_anyio.connectors.postgres import connect
from tests.support import PG_HANG_GUARD_SECONDS

if TYPE_CHECKING:
    from tests.pg_cluster import Cluster

pytestmark = pytest.mark.anyio

CONCURRENCY = 10
BEFORE = 20
"""Jobs that succeed before the restart."""
AFTER = 30
"""Jobs deferred after the restart, by each of the async and sync paths."""


def make_app(dsn: str, gate: anyio.Event) -> pa.App:
    app = pa.App(
        connector=pa.PsycopgConnector(dsn, max_size=4),
        worker_defaults={
            "install_signal_handlers": False,
            "shutdown_graceful_timeout": 5,
            "fetch_job_polling_interval": 0.5,
            "update_heartbeat_interval": 0.2,
            "stalled_worker_timeout": 60,
        },
    )

    @app.task(name="quick")
    async def quick(i: int) -> int:
        return i

    @app.task(name="held")
    async def held(i: int) -> int:
        await gate.wait()
        return i

    return app


async def statuses(dsn: str) -> dict[str, int]:
    """The jobs by status, on a new connection; {} while the server is down."""
    with contextlib.suppress(psycopg.OperationalError):
        async with await connect(dsn) as conn:
            cursor = await conn.execute(
                b"SELECT status::text AS s, count(*) AS n FROM pa_jobs GROUP BY 1"
            )
            return {row["s"]: row["n"] for row in await cursor.fetchall()}
    return {}


async def wait_statuses(dsn: str, **expected: int) -> None:
    """Poll until the jobs are exactly ``expected`` by status (bounded by the
    caller's hang guard)."""
    while True:
        if await statuses(dsn) == expected:
            return
        await anyio.sleep(0.02)


async def test_worker_outlives_a_postgres_restart(
    private_pg: Cluster, private_dsn: str
) -> None:
    """A worker draining jobs while PostgreSQL restarts reconnects its pool
    and its listener: the jobs it was running succeed, so do the jobs
    deferred after the restart (async, and sync through a pool opened before
    it), none is left ``doing``, and the worker stops cleanly."""
    gate = anyio.Event()
    app = make_app(private_dsn, gate)
    sync_app = make_app(private_dsn, gate)
    hub = app.job_manager.notifications
    total = BEFORE + CONCURRENCY + 2 * AFTER
    with anyio.fail_after(2 * PG_HANG_GUARD_SECONDS):
        await anyio.to_thread.run_sync(sync_app.open)
        try:
            async with app.open_async(), anyio.create_task_group() as tg:
                worker = await tg.start(
                    functools.partial(app.run_worker, concurrency=CONCURRENCY)
                )
                quick = app.get_task("quick")
                await quick.batch_defer_async(*({"i": i} for i in range(BEFORE)))
                await wait_statuses(private_dsn, succeeded=BEFORE)
                held = app.get_task("held")
                await held.batch_defer_async(*({"i": i} for i in range(CONCURRENCY)))
                await wait_statuses(private_dsn, succeeded=BEFORE, doing=CONCURRENCY)

                await anyio.to_thread.run_sync(private_pg.restart)

                # New connections of the worker's own pool, and a sync pool
                # whose connections the restart closed.
                await quick.batch_defer_async(*({"i": i} for i in range(AFTER)))
                sync_quick = sync_app.get_task("quick")
                await anyio.to_thread.run_sync(
                    functools.partial(
                        sync_quick.batch_defer, *({"i": i} for i in range(AFTER))
                    )
                )
                gate.set()
                await wait_statuses(private_dsn, succeeded=total)
                await hub.wait_listening()
                worker.stop()
        finally:
            await anyio.to_thread.run_sync(sync_app.close)
    assert await statuses(private_dsn) == {"succeeded": total}
    assert hub.statistics().reconnections >= 1
    stats = worker.statistics()
    assert stats.running_jobs == 0
    assert stats.jobs_done["succeeded"] == total
