"""Scenario 10: what global limits cost. The best-settings drain twice in one
run: the no-op task without limits, then the same task with a concurrency
limit and a rate limit that never bind (so the drain runs the limited claim:
advisory locks, the limits' counts, the start rows). The target: at most 10%
slower."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import procrastinate_anyio as pa

from . import config
from .drain import measure_drain
from .ours import NOOP
from .results import Measurement, timed

if TYPE_CHECKING:
    from .ours import Context

CONCURRENCY_LIMIT: Final = 1_000_000
RATE_LIMIT: Final = "1000000/s"


async def run(ctx: Context, runtime: str) -> list[Measurement]:
    jobs = ctx.settings.sizes.drain_jobs
    cfg = config.BEST_DRAIN
    plain = ctx.bench()
    async with plain.app.open_async():
        unlimited = await measure_drain(ctx, plain, runtime, cfg, jobs, "best")
    limited = ctx.bench()
    # The same task name, now with limits: the worker claims under them.
    limited.app = pa.App(connector=limited.app.connector)

    @limited.app.task(
        name=NOOP, concurrency_limit=CONCURRENCY_LIMIT, rate_limit=RATE_LIMIT
    )
    async def noop(i: int = 0) -> None:
        pass

    limited.noop = noop
    async with limited.app.open_async():
        with_limits = await measure_drain(ctx, limited, runtime, cfg, jobs, "best")
        limited.reset()
    return [
        timed(
            scenario="limits-none",
            library=unlimited.library,
            runtime=unlimited.runtime,
            settings=unlimited.settings,
            jobs=unlimited.jobs,
            seconds=unlimited.seconds,
            extra=unlimited.extra,
        ),
        timed(
            scenario="limits",
            library=with_limits.library,
            runtime=with_limits.runtime,
            settings=f"{with_limits.settings}, concurrency_limit and rate_limit (not binding)",
            jobs=with_limits.jobs,
            seconds=with_limits.seconds,
            extra={
                **with_limits.extra,
                "vs_no_limit": (with_limits.rate or 0) / unlimited.rate
                if unlimited.rate
                else None,
            },
        ),
    ]
