"""Scenario 9: drain jobs that wait briefly (``anyio.sleep(0.001)``), the
shape of jobs that call a fast service, at concurrency 16 and 64.

Jobs that wait 1 ms should cost little more than no-op jobs: with 16 slots,
the ceiling is 16,000 jobs/s; the figure shows how close the worker gets
(claims and completions must keep the slots busy while the jobs wait).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from . import config, ours
from .results import OURS, Measurement, median_run, timed

if TYPE_CHECKING:
    from .ours import Context

CONCURRENCIES: Final = (16, 64)


async def run(ctx: Context, runtime: str) -> list[Measurement]:
    jobs = ctx.settings.sizes.sleepy_jobs
    bench = ctx.bench()
    results = []
    async with bench.app.open_async():
        for concurrency in CONCURRENCIES:
            cfg = config.DrainConfig(concurrency=concurrency, fetch_batch_size=100)
            runs = []
            for _ in range(ctx.settings.repeat):
                ctx.progress.step(
                    f"drain {jobs:,} jobs of 1 ms: {OURS} on {runtime}, {cfg.label()}"
                )
                seconds, done, noise = await ours.timed_drain(
                    ctx, bench, bench.sleepy, cfg, jobs
                )
                extra = {} if done == jobs else {"incomplete": f"{done} of {jobs}"}
                runs.append(
                    timed(
                        scenario=f"sleepy-{concurrency}",
                        library=OURS,
                        runtime=ours.label(runtime),
                        settings=cfg.label(),
                        role="",
                        jobs=jobs,
                        seconds=seconds,
                        extra={**noise, **extra},
                    )
                )
            results.append(median_run(runs))
        bench.reset()
    return results
