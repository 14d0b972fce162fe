"""Scenario 7: many concurrent waiters, as a web application has them.

``waiters`` tasks each defer a no-op job and await ``wait_for_job_async``
(an endpoint that returns the job's result), all at once, while one worker of
the same app runs in the process. Measured: how many waits complete per
second, and the most connections the benchmark database had open meanwhile
(sampled from ``pg_stat_activity`` every few milliseconds through the admin
database, whose own connection is not counted). Waiters share the app's one
LISTEN connection: the connections stay at the pool's size plus one, whatever
the number of waiters.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

import anyio
import psycopg

import procrastinate_anyio as pa

from .results import OURS, Measurement

if TYPE_CHECKING:
    from .ours import Context

SAMPLE_INTERVAL_SECONDS: Final = 0.005
WAIT_TIMEOUT_SECONDS: Final = 120.0
WORKER_CONCURRENCY: Final = 20


def connections(admin_dsn: str, dbname: str) -> int:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (dbname,)
        ).fetchone()
    return int(row[0]) if row else 0


async def run(ctx: Context, runtime: str) -> list[Measurement]:
    waiters = ctx.settings.sizes.waiters
    bench = ctx.bench()
    dbname = ctx.settings.database("ours")
    most = 0
    refused = 0
    done = 0

    async def sample(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        nonlocal most
        task_status.started()
        while True:
            count = await anyio.to_thread.run_sync(
                connections, ctx.settings.admin_dsn, dbname
            )
            most = max(most, count)
            await anyio.sleep(SAMPLE_INTERVAL_SECONDS)

    async def waiter() -> None:
        nonlocal done, refused
        try:
            job_id = await bench.noop.defer_async()
            await bench.app.job_manager.wait_for_job_async(
                job_id, timeout=WAIT_TIMEOUT_SECONDS
            )
        except pa.ConnectorException:
            refused += 1
        done += 1

    async with bench.app.open_async():
        bench.reset()
        ctx.progress.step(
            f"waiters, {waiters:,} at once: {OURS} on {runtime}, one worker "
            f"(concurrency={WORKER_CONCURRENCY})"
        )
        worker = pa.Worker(
            bench.app, concurrency=WORKER_CONCURRENCY, install_signal_handlers=False
        )
        async with anyio.create_task_group() as tg:
            await tg.start(worker.run)
            await tg.start(sample)
            async with anyio.create_task_group() as watch:
                watch.start_soon(ctx.progress.watch, lambda: done, waiters)
                started = time.perf_counter()
                async with anyio.create_task_group() as crowd:
                    for _ in range(waiters):
                        crowd.start_soon(waiter)
                elapsed = time.perf_counter() - started
                watch.cancel_scope.cancel()
            ctx.progress.end_watch()
            worker.stop()
            tg.cancel_scope.cancel()
        bench.reset()
    return [
        Measurement(
            scenario="waiters",
            library=OURS,
            runtime=runtime,
            settings=f"{waiters} concurrent waiters, worker concurrency={WORKER_CONCURRENCY}",
            role="default",
            jobs=waiters,
            seconds=elapsed,
            rate=waiters / elapsed,
            extra={"connections_max": most, "refused": refused},
        )
    ]
