"""Scenario 2: drain a pre-filled queue of no-op async jobs.

Each point: TRUNCATE, a warm-up drain of a few jobs with the same settings,
TRUNCATE, pre-fill N jobs (not timed), ANALYZE + CHECKPOINT, then time one
worker with ``wait=False`` from ``Worker.run()`` until it returns (all jobs
fetched, run and written ``succeeded``). Runs the library defaults (a smaller
N: concurrency 1 is slow) and the best setting, or the whole sweep.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from . import config, ours
from .results import OURS, Measurement, best_of, median_run, timed

if TYPE_CHECKING:
    from .config import DrainConfig
    from .ours import Context


async def measure_drain(
    ctx: Context,
    bench: ours.Bench,
    runtime: str,
    cfg: DrainConfig,
    jobs: int,
    role: str,
    *,
    sync: bool = False,
) -> Measurement:
    """One drain point (median of ``repeat`` runs), of async no-op jobs or,
    with ``sync``, of sync ones (scenario ``drain-sync``)."""
    task = bench.noop_sync if sync else bench.noop
    kind = "sync jobs" if sync else "jobs"
    runs = []
    for _ in range(ctx.settings.repeat):
        ctx.progress.step(f"drain {jobs:,} {kind}: {OURS} on {runtime}, {cfg.label()}")
        seconds, done, noise = await ours.timed_drain(ctx, bench, task, cfg, jobs)
        extra = {} if done == jobs else {"incomplete": f"{done} of {jobs} succeeded"}
        runs.append(
            timed(
                scenario="drain-sync" if sync else "drain",
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
    sizes = ctx.settings.sizes
    bench = ctx.bench()
    results = []
    async with bench.app.open_async():
        results.append(
            await measure_drain(
                ctx,
                bench,
                runtime,
                config.DEFAULT_DRAIN,
                sizes.drain_default_jobs,
                "default",
            )
        )
        if ctx.settings.sweep:
            sweep = [
                await measure_drain(ctx, bench, runtime, cfg, sizes.drain_jobs, "sweep")
                for cfg in config.SWEEP_DRAIN
            ]
            best = best_of(sweep)
            results += [m for m in sweep if m is not best]
            results.append(_as_best(best))
        else:
            results.append(
                await measure_drain(
                    ctx, bench, runtime, config.BEST_DRAIN, sizes.drain_jobs, "best"
                )
            )
        bench.reset()
    return results


def _as_best(measurement: Measurement) -> Measurement:
    return dataclasses.replace(measurement, role="best")
