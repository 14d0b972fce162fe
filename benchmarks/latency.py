"""Scenario 4: defer-to-start latency with an idle worker.

One worker with default settings (LISTEN/NOTIFY on) runs in the same process.
Each sample: read ``time.perf_counter()``, ``await defer_async()``, wait until
the task body has recorded ``time.perf_counter()`` as its first statement;
the difference is the sample. A short pause follows each sample so the worker
is idle (waiting for a notification) when the next job arrives. Warm-up
samples are dropped.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final

import anyio

import procrastinate_anyio as pa

from . import ours
from .results import OURS, Measurement, percentiles_ms

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .ours import Context, Probe

WARMUP_SAMPLES: Final = 20
SAMPLE_TIMEOUT_SECONDS: Final = 10.0


async def sample(
    probe: Probe,
    defer: Callable[[], Awaitable[Any]],
    samples: int,
    gap: float,
    on_sample: Callable[[int], None] = lambda n: None,
) -> list[float]:
    """``samples`` serial defer-to-start delays, in seconds.

    Works for any library whose task calls ``probe.hit()`` first thing.
    """
    delays = []
    for n in range(WARMUP_SAMPLES + samples):
        probe.event = anyio.Event()
        with anyio.fail_after(SAMPLE_TIMEOUT_SECONDS):
            started = time.perf_counter()
            await defer()
            await probe.event.wait()
        if n >= WARMUP_SAMPLES:
            delays.append(probe.started_at - started)
            on_sample(len(delays))
        await anyio.sleep(gap)
    return delays


def measurement(
    library: str,
    runtime: str,
    settings: str,
    role: str,
    delays: list[float],
    noise: dict[str, int],
) -> Measurement:
    return Measurement(
        scenario="latency",
        library=library,
        runtime=runtime,
        settings=settings,
        role=role,
        jobs=len(delays),
        seconds=sum(delays),
        extra={**percentiles_ms(delays), **noise},
    )


async def run(ctx: Context, runtime: str) -> list[Measurement]:
    sizes = ctx.settings.sizes
    bench = ctx.bench()
    done = 0

    def count(n: int) -> None:
        nonlocal done
        done = n

    async with bench.app.open_async():
        bench.reset()
        ctx.progress.step(
            f"latency, {sizes.latency_samples:,} samples: {OURS} on {runtime}"
        )
        worker = pa.Worker(bench.app, install_signal_handlers=False)
        noise = ctx.noise("ours")
        noise.start()
        async with anyio.create_task_group() as tg:
            await tg.start(worker.run)
            async with anyio.create_task_group() as watch:
                watch.start_soon(
                    ctx.progress.watch, lambda: done, sizes.latency_samples
                )
                delays = await sample(
                    bench.probe,
                    bench.probe_task.defer_async,
                    sizes.latency_samples,
                    sizes.latency_gap_seconds,
                    count,
                )
                watch.cancel_scope.cancel()
            ctx.progress.end_watch()
            worker.stop()
        bench.reset()
    return [
        measurement(
            OURS,
            ours.label(runtime),
            "worker defaults (concurrency=1, listen_notify=True)",
            "default",
            delays,
            noise.stop(),
        )
    ]
