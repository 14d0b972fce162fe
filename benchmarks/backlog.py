"""Scenario 8: the drain with a big table (``--backlog``).

The same best-settings drain twice in one run: on a small table (``--jobs``
jobs), then with the table already holding ``--backlog`` ``todo`` jobs and as
many finished (``succeeded``) ones, timed over the first ``--jobs`` jobs the
worker finishes (then it is stopped). The claim must not grow with the
backlog: the second rate should stay at least 0.8x the first. The big table
is written by SQL (``generate_series``), not through the library, so the
fill takes seconds; the worker runs the same no-op task.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import anyio
import psycopg

import procrastinate_anyio as pa

from . import config, database, ours
from .drain import measure_drain
from .ours import NOOP, TABLES
from .results import OURS, Measurement, timed

if TYPE_CHECKING:
    from .ours import Context

FILL = """
INSERT INTO pa_jobs (queue_name, task_name, args, status, attempts, finished_at)
SELECT 'default', %(task)s, jsonb_build_object('i', i), %(status)s::pa_job_status,
       CASE WHEN %(status)s = 'todo' THEN 0 ELSE 1 END,
       CASE WHEN %(status)s = 'todo' THEN NULL ELSE now() END
FROM generate_series(1, %(count)s) AS i
"""


def fill(dsn: str, *, todo: int, finished: int) -> None:
    """``finished`` succeeded jobs first (older ids), then ``todo`` ones."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for status, count in (("succeeded", finished), ("todo", todo)):
            conn.execute(FILL, {"task": NOOP, "status": status, "count": count})


async def timed_partial_drain(
    ctx: Context, bench: ours.Bench, cfg: config.DrainConfig, jobs: int
) -> tuple[float, int]:
    """Run a worker until it has finished ``jobs`` jobs; their time."""
    worker = pa.Worker(
        bench.app, install_signal_handlers=False, **ours.worker_options(cfg)
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(ctx.progress.watch, lambda: ours.succeeded(worker), jobs)
        await tg.start(worker.run)
        started = time.perf_counter()
        while ours.succeeded(worker) < jobs:  # noqa: ASYNC110  # a counter, no event
            await anyio.sleep(0.005)
        elapsed = time.perf_counter() - started
        done = ours.succeeded(worker)
        worker.stop(now=True)
        tg.cancel_scope.cancel()
    ctx.progress.end_watch()
    return elapsed, done


async def run(ctx: Context, runtime: str) -> list[Measurement]:
    sizes = ctx.settings.sizes
    jobs = sizes.drain_jobs
    backlog = sizes.backlog
    bench = ctx.bench()
    cfg = config.BEST_DRAIN
    async with bench.app.open_async():
        small = await measure_drain(ctx, bench, runtime, cfg, jobs, "best")
        ctx.progress.step(
            f"backlog: {backlog:,} todo and {backlog:,} finished jobs, then "
            f"{jobs:,} drained: {OURS} on {runtime}, {cfg.label()}"
        )
        bench.reset()
        fill(bench.dsn, todo=backlog, finished=backlog)
        database.settle(ctx.settings.admin_dsn, bench.dsn, TABLES)
        seconds, done = await timed_partial_drain(ctx, bench, cfg, jobs)
        bench.reset()
    big = timed(
        scenario="backlog",
        library=OURS,
        runtime=ours.label(runtime),
        settings=f"{cfg.label()}, {backlog:,} todo + {backlog:,} finished",
        role="best",
        jobs=done,
        seconds=seconds,
        extra={
            "backlog": backlog,
            "small_table_rate": small.rate,
            "vs_small_table": (done / seconds) / small.rate if small.rate else None,
        },
    )
    return [
        timed(
            scenario="backlog-small",
            library=OURS,
            runtime=small.runtime,
            settings=small.settings,
            role="best",
            jobs=small.jobs,
            seconds=small.seconds,
            extra=small.extra,
        ),
        big,
    ]
