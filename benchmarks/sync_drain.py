"""Scenario 5: drain a pre-filled queue of no-op sync jobs.

Same method as ``drain.py``; a sync task runs in a worker thread
(``anyio.to_thread.run_sync``, limited to ``concurrency`` threads), so this
measures the thread hand-off on top of the queue.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from . import config
from .drain import measure_drain
from .results import Measurement, best_of

if TYPE_CHECKING:
    from . import ours
    from .config import DrainConfig
    from .ours import Context


async def _point(
    ctx: Context, bench: ours.Bench, runtime: str, cfg: DrainConfig, role: str
) -> Measurement:
    jobs = ctx.settings.sizes.sync_jobs
    return await measure_drain(ctx, bench, runtime, cfg, jobs, role, sync=True)


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
