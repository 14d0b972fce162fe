"""Scenario 3: sustained throughput, a producer and one worker together.

A producer process (spawned, on the same runtime) defers batches of no-op
jobs as fast as it can for T seconds while one worker (the best drain
setting) runs in this process. Reported: the rate jobs went in, the rate they
were done, and the backlog left: a queue that grew means the worker was the
bottleneck (consumer-bound); one that stayed near empty means it kept up and
the producer set the pace (producer-bound). On 2 cores the producer, the
worker and PostgreSQL share the CPU, so both rates are lower than alone.
"""

from __future__ import annotations

import functools
import multiprocessing
import time
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

import procrastinate_anyio as pa

from . import config, database, ours
from .results import OURS, Measurement, timed

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from .ours import Context

BACKLOG_QUERY = "SELECT count(*) FROM pa_jobs WHERE status = 'todo'"


def producer_main(
    dsn: str,
    connect_kwargs: dict[str, Any],
    runtime: str,
    batch_size: int,
    seconds: float,
    pipe: Connection,
) -> None:
    """Entry point of the producer process."""
    ours.run_on(runtime, _produce, dsn, connect_kwargs, batch_size, seconds, pipe)


async def _produce(
    dsn: str,
    connect_kwargs: dict[str, Any],
    batch_size: int,
    seconds: float,
    pipe: Connection,
) -> None:
    bench = ours.Bench(dsn, connect_kwargs)
    batch = [{"i": i} for i in range(batch_size)]
    async with bench.app.open_async():
        await bench.noop.batch_defer_async(*batch)  # warm-up
        pipe.send("ready")
        await anyio.to_thread.run_sync(pipe.recv)  # "go"
        deferred = 0
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            await bench.noop.batch_defer_async(*batch)
            deferred += batch_size
        pipe.send((deferred, time.perf_counter() - started))


def verdict(deferred: int, backlog: int, cfg: config.DrainConfig) -> str:
    """Whether the queue grew over the run."""
    slack = max(2 * cfg.concurrency, deferred // 20)
    if backlog > slack:
        return f"consumer-bound (queue grew by {backlog:,})"
    return f"producer-bound (worker kept up, backlog {backlog:,})"


async def run(ctx: Context, runtime: str) -> list[Measurement]:
    sizes = ctx.settings.sizes
    cfg = config.BEST_DRAIN
    bench = ctx.bench()
    spawn = multiprocessing.get_context("spawn")
    ctx.progress.step(
        f"sustained {sizes.sustained_seconds:g}s, producer batches of "
        f"{sizes.producer_batch_size}: {OURS} on {runtime}, {cfg.label()}"
    )
    async with bench.app.open_async():
        bench.reset()
        # Statistics of the (empty) table, as autovacuum would have gathered.
        database.settle(ctx.settings.admin_dsn, bench.dsn, ours.TABLES)
        worker = pa.Worker(
            bench.app, install_signal_handlers=False, **ours.worker_options(cfg)
        )
        async with anyio.create_task_group() as tg:
            await tg.start(worker.run)
            parent, child = spawn.Pipe()
            process = spawn.Process(
                target=producer_main,
                args=(
                    bench.dsn,
                    ctx.connect_kwargs(),
                    runtime,
                    sizes.producer_batch_size,
                    sizes.sustained_seconds,
                    child,
                ),
                daemon=True,
            )
            process.start()
            child.close()
            try:
                await anyio.to_thread.run_sync(parent.recv)  # "ready"
                noise = ctx.noise("ours")
                await anyio.to_thread.run_sync(noise.start)
                done_before = ours.succeeded(worker)
                started = time.perf_counter()
                parent.send("go")
                async with anyio.create_task_group() as watch:
                    watch.start_soon(
                        ctx.progress.watch,
                        functools.partial(ours.succeeded, worker),
                        None,
                    )
                    answer: Any = await anyio.to_thread.run_sync(parent.recv)
                    watch.cancel_scope.cancel()
                ctx.progress.end_watch()
                elapsed = time.perf_counter() - started
                done = ours.succeeded(worker) - done_before
                backlog = await anyio.to_thread.run_sync(
                    database.count, bench.dsn, BACKLOG_QUERY
                )
                noise_seen = await anyio.to_thread.run_sync(noise.stop)
            finally:
                worker.stop()
                await anyio.to_thread.run_sync(process.join, 30)
                parent.close()
        bench.reset()
    deferred, produce_seconds = int(answer[0]), float(answer[1])
    return [
        timed(
            scenario="sustained",
            library=OURS,
            runtime=ours.label(runtime),
            settings=f"{cfg.label()}; 1 producer process, batches of "
            f"{sizes.producer_batch_size}",
            role="best",
            jobs=done,
            seconds=elapsed,
            extra={
                "deferred": deferred,
                "in_rate": round(deferred / produce_seconds, 1),
                "backlog": backlog,
                "verdict": verdict(deferred, backlog, cfg),
                **noise_seen,
            },
        )
    ]
