"""What the peers' modules share: the timed loops of the defer and drain
scenarios, with repeats, noise counters and client CPU, around callables that
speak each library's API."""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

from .results import (
    CpuMeter,
    Measurement,
    best_of,
    median_run,
    timed,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .ours import Context


@dataclasses.dataclass(frozen=True)
class DeferCalls:
    """How a library defers ``n`` jobs: one call per job, or in calls of 1,000."""

    single: Callable[[int], Awaitable[object]]
    single_settings: str
    batch: Callable[[int], Awaitable[object]]
    batch_settings: str


async def timed_defers(
    ctx: Context, library: str, reset: Callable[[], object], calls: DeferCalls
) -> list[Measurement]:
    """The defer scenario: ``repeat`` rounds of both kinds, medians."""
    sizes = ctx.settings.sizes
    kinds = (
        ("defer-single", sizes.defer_single_jobs, calls.single, calls.single_settings),
        ("defer-batch", sizes.defer_batch_jobs, calls.batch, calls.batch_settings),
    )
    runs: dict[str, list[Measurement]] = {scenario: [] for scenario, *_ in kinds}
    for _ in range(ctx.settings.repeat):
        for scenario, jobs, defer, settings in kinds:
            reset()
            ctx.progress.step(f"{scenario} {jobs:,} jobs: {library} on asyncio")
            noise = ctx.noise(library)
            noise.start()
            started = time.perf_counter()
            await defer(jobs)
            seconds = time.perf_counter() - started
            runs[scenario].append(
                timed(
                    scenario=scenario,
                    library=library,
                    runtime="asyncio",
                    settings=settings,
                    jobs=jobs,
                    seconds=seconds,
                    extra=noise.stop(),
                )
            )
    reset()
    return [median_run(runs[scenario]) for scenario, *_ in kinds]


async def timed_drains(
    ctx: Context,
    *,
    library: str,
    runtime: str,
    settings: str,
    role: str,
    jobs: int,
    prepare: Callable[[], Awaitable[object]],
    drain: Callable[[], Awaitable[tuple[float, int]]],
) -> Measurement:
    """The drain scenario at one setting: ``repeat`` times ``prepare()``
    (reset, warm up, pre-fill, settle) then a timed ``drain()``, which
    returns its seconds and the jobs it ran; the median."""
    runs = []
    for _ in range(ctx.settings.repeat):
        await prepare()
        ctx.progress.step(f"drain {jobs:,} jobs: {library} on {runtime}, {settings}")
        noise = ctx.noise(library)
        noise.start()
        meter = CpuMeter()
        meter.start()
        seconds, done = await drain()
        extra: dict[str, Any] = {**noise.stop(), **meter.per_job(jobs)}
        if done != jobs:
            extra["incomplete"] = f"{done} of {jobs} ran"
        runs.append(
            timed(
                scenario="drain",
                library=library,
                runtime=runtime,
                settings=settings,
                role=role,
                jobs=jobs,
                seconds=seconds,
                extra=extra,
            )
        )
    return median_run(runs)


def with_best(points: list[Measurement]) -> list[Measurement]:
    """The points of a sweep, the fastest one marked "best" (a copy of it,
    when it is also the library's default)."""
    best = best_of(points)
    kept = [p for p in points if p.role == "default" or p is not best]
    return [*kept, dataclasses.replace(best, role="best")]
