"""Scenario 5: drain a pre-filled queue of no-op sync jobs.

Same method as ``drain.py``; a sync task runs in a worker thread
(``anyio.to_thread.run_sync``, limited to ``concurrency`` threads), so this
measures the thread hand-off on top of the queue.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from . import config, ours
from .results import OURS, Measurement, best_of, median_run, timed

if TYPE_CHECKING:
    from .config import DrainConfig
    from .ours import Context


async def _point(
    ctx: Context, bench: ours.Bench, runtime: str, cfg: DrainConfig, role: str
) -> Measurement:
    jobs = ctx.settings.sizes.sync_jobs
    runs = []
    for _ in range(ctx.settings.repeat):
        ctx.progress.step(
            f"drain {jobs:,} sync jobs: {OURS} on {runtime}, {cfg.label()}"
        )
        seconds, done, noise = await ours.timed_drain(
            ctx, bench, bench.noop_sync, cfg, jobs
        )
        extra = {} if done == jobs else {"incomplete": f"{done} of {jobs} succeeded"}
        runs.append(
            timed(
                scenario="drain-sync",
                library=OURS,
                runtime=ours.label(runtime),
                settings=cfg.label(),
                role=role,
                jobs=jobs,
                seconds=seconds,
                extra={**noise, **extra},
            )
        )
    return median_run(runs)


async def run(ctx: Context, runtime: str) -> list[Measurement]:
    bench = ctx.bench()
    async with bench.app.open_async():
        if ctx.settings.sweep:
            sweep = [
                await _point(ctx, bench, runtime, cfg, "sweep")
                for cfg in config.SWEEP_SYNC
            ]
            best = best_of(sweep)
            results = [m for m in sweep if m is not best]
            results.append(dataclasses.replace(best, role="best"))
        else:
            results = [await _point(ctx, bench, runtime, config.SYNC_DRAIN, "best")]
        bench.reset()
    return results
