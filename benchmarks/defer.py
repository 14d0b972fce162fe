"""Scenario 1: defer rate, one job per call and in batches.

One call per job measures the round trip of ``defer_async`` (one INSERT, one
NOTIFY from the statement trigger); batches measure ``batch_defer_async``
(``INSERT ... SELECT FROM unnest(...)`` of 1,000 rows). Both start from empty
tables after a warm-up.
"""

from __future__ import annotations

import gc
import time
from typing import TYPE_CHECKING

from . import ours
from .results import OURS, Measurement, median_run, timed

if TYPE_CHECKING:
    from .ours import Bench, Context


async def _single(bench: Bench, jobs: int) -> float:
    gc.collect()
    started = time.perf_counter()
    for i in range(jobs):
        await bench.noop.defer_async(i=i)
    return time.perf_counter() - started


async def _batch(bench: Bench, jobs: int, batch_size: int) -> float:
    batches = [
        [{"i": i} for i in range(start, min(start + batch_size, jobs))]
        for start in range(0, jobs, batch_size)
    ]
    gc.collect()
    started = time.perf_counter()
    for batch in batches:
        await bench.noop.batch_defer_async(*batch)
    return time.perf_counter() - started


async def run(ctx: Context, runtime: str) -> list[Measurement]:
    sizes = ctx.settings.sizes
    bench = ctx.bench()
    results: list[Measurement] = []
    async with bench.app.open_async():
        bench.reset()
        await _single(bench, min(200, sizes.defer_single_jobs))
        await _batch(bench, sizes.defer_batch_size * 2, sizes.defer_batch_size)
        single: list[Measurement] = []
        batch: list[Measurement] = []
        for _ in range(ctx.settings.repeat):
            bench.reset()
            ctx.progress.step(
                f"defer {sizes.defer_single_jobs:,} one by one: {OURS} on {runtime}"
            )
            noise = ctx.noise("ours")
            noise.start()
            seconds = await _single(bench, sizes.defer_single_jobs)
            single.append(
                timed(
                    scenario="defer-single",
                    library=OURS,
                    runtime=ours.label(runtime),
                    settings="defer_async, one job per call",
                    jobs=sizes.defer_single_jobs,
                    seconds=seconds,
                    extra=noise.stop(),
                )
            )
            bench.reset()
            ctx.progress.step(
                f"defer {sizes.defer_batch_jobs:,} in batches of "
                f"{sizes.defer_batch_size:,}: {OURS} on {runtime}"
            )
            noise.start()
            seconds = await _batch(
                bench, sizes.defer_batch_jobs, sizes.defer_batch_size
            )
            batch.append(
                timed(
                    scenario="defer-batch",
                    library=OURS,
                    runtime=ours.label(runtime),
                    settings=f"batch_defer_async, {sizes.defer_batch_size:,} per call",
                    jobs=sizes.defer_batch_jobs,
                    seconds=seconds,
                    extra=noise.stop(),
                )
            )
        results += [median_run(single), median_run(batch)]
        bench.reset()
    return results
