"""Procrastinate 3.x, the same defer, drain, latency and cost scenarios.

Asyncio only: Procrastinate does not run on Trio. Its own API does the work:
``App(connector=PsycopgConnector(conninfo=...))``, the schema through
``app.schema_manager.apply_schema_async()`` on an empty database,
``defer_async`` / ``batch_defer_async``, and ``procrastinate.worker.Worker``
with ``wait=False`` for drains. Settings: its defaults (concurrency 1, its
default pool), and its one documented throughput knob, ``concurrency``, swept.
"""

from __future__ import annotations

import functools
import time
from importlib.metadata import version
from typing import TYPE_CHECKING, Any, Final

import anyio
import procrastinate  # type: ignore[import-not-found, unused-ignore]  # the bench group installs it
from procrastinate import worker as procrastinate_worker  # type: ignore[import-not-found, unused-ignore]

from . import cost, database, latency, peers
from .ours import Probe, run_on

if TYPE_CHECKING:
    from .ours import Context
    from .results import Measurement

NAME: Final = "procrastinate"
RUNTIME: Final = "asyncio"
TABLES: Final = (
    "procrastinate_jobs",
    "procrastinate_events",
    "procrastinate_periodic_defers",
    "procrastinate_workers",
)
CONCURRENCY_SWEEP: Final = (1, 10, 50)
DEFAULT_CONCURRENCY: Final = 1


class Bench:
    """A Procrastinate app with a no-op task (counting its runs) and a probe."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.app: Any = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=dsn)
        )
        self.probe = Probe()
        self.done = 0
        probe = self.probe

        @self.app.task(name="bench.noop")
        async def noop(i: int = 0) -> None:
            self.done += 1

        @self.app.task(name="bench.probe")
        async def probe_task() -> None:
            probe.hit()

        self.noop: Any = noop
        self.probe_task: Any = probe_task

    def reset(self) -> None:
        database.reset_tables(self.dsn, TABLES)
        self.done = 0

    async def prefill(self, jobs: int) -> None:
        for start in range(0, jobs, 1000):
            await self.noop.batch_defer_async(
                *({"i": i} for i in range(start, min(start + 1000, jobs)))
            )

    async def drain(
        self, ctx: Context, concurrency: int, total: int | None
    ) -> tuple[float, int]:
        """One worker with ``wait=False``: its seconds, and the jobs it ran."""
        self.done = 0
        worker = procrastinate_worker.Worker(
            app=self.app,
            concurrency=concurrency,
            wait=False,
            install_signal_handlers=False,
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(ctx.progress.watch, lambda: self.done, total)
            started = time.perf_counter()
            await worker.run()  # type: ignore[no-untyped-call, unused-ignore]  # untyped upstream
            elapsed = time.perf_counter() - started
            tg.cancel_scope.cancel()
        ctx.progress.end_watch()
        return elapsed, self.done


def library_version() -> str:
    return f"{NAME} {version('procrastinate')}"


class Runner:
    """Procrastinate's scenarios, one at a time (``__main__`` interleaves the
    libraries scenario by scenario, so that drifting machine load hits all
    of them alike)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.dsn = database.recreate_database(
            ctx.settings.admin_dsn, ctx.settings.database(NAME)
        )
        run_on(RUNTIME, _setup, ctx, self.dsn)
        self.best_concurrency = max(CONCURRENCY_SWEEP)

    def run(self, scenario: str) -> list[Measurement]:
        ctx, dsn = self.ctx, self.dsn
        if scenario == "defer":
            return run_on(RUNTIME, _defer, ctx, dsn)
        if scenario == "drain":
            drains = run_on(RUNTIME, _drain, ctx, dsn)
            best = next(m for m in drains if m.role == "best")
            self.best_concurrency = int(best.settings.removeprefix("concurrency="))
            return drains
        if scenario == "latency":
            return run_on(RUNTIME, _latency, ctx, dsn)
        if scenario == "cost":
            return run_on(RUNTIME, _cost, ctx, dsn, self.best_concurrency)
        return []  # sustained and sync: procrastinate_anyio only


async def _setup(ctx: Context, dsn: str) -> list[Measurement]:
    bench = Bench(dsn)
    async with bench.app.open_async():
        await bench.app.schema_manager.apply_schema_async()
    return []


async def _defer(ctx: Context, dsn: str) -> list[Measurement]:
    bench = Bench(dsn)

    async def single(jobs: int) -> None:
        for i in range(jobs):
            await bench.noop.defer_async(i=i)

    async with bench.app.open_async():
        await bench.prefill(100)  # warm-up
        return await peers.timed_defers(
            ctx,
            NAME,
            bench.reset,
            peers.DeferCalls(
                single=single,
                single_settings="defer_async, one job per call",
                batch=bench.prefill,
                batch_settings="batch_defer_async, 1,000 per call",
            ),
        )


async def _drain(ctx: Context, dsn: str) -> list[Measurement]:
    jobs = ctx.settings.sizes.procrastinate_jobs
    bench = Bench(dsn)
    points = []
    async with bench.app.open_async():
        for concurrency in CONCURRENCY_SWEEP:

            async def prepare(concurrency: int = concurrency) -> None:
                bench.reset()
                await bench.prefill(ctx.settings.sizes.warmup_jobs)
                await bench.drain(ctx, concurrency, None)
                bench.reset()
                await bench.prefill(jobs)
                database.settle(ctx.settings.admin_dsn, dsn, TABLES)

            points.append(
                await peers.timed_drains(
                    ctx,
                    library=NAME,
                    runtime=RUNTIME,
                    settings=f"concurrency={concurrency}",
                    role="default" if concurrency == DEFAULT_CONCURRENCY else "sweep",
                    jobs=jobs,
                    prepare=prepare,
                    drain=functools.partial(bench.drain, ctx, concurrency, jobs),
                )
            )
        bench.reset()
    return peers.with_best(points)


async def _latency(ctx: Context, dsn: str) -> list[Measurement]:
    sizes = ctx.settings.sizes
    bench = Bench(dsn)
    async with bench.app.open_async():
        bench.reset()
        ctx.progress.step(
            f"latency, {sizes.latency_samples:,} samples: {NAME} on {RUNTIME}"
        )
        worker = procrastinate_worker.Worker(
            app=bench.app, wait=True, install_signal_handlers=False
        )
        noise = ctx.noise(NAME)
        noise.start()
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run)
            await anyio.sleep(0.5)  # its run() has no readiness signal
            delays = await latency.sample(
                bench.probe,
                bench.probe_task.defer_async,
                sizes.latency_samples,
                sizes.latency_gap_seconds,
            )
            worker.stop()  # type: ignore[no-untyped-call, unused-ignore]  # untyped upstream
        bench.reset()
    return [
        latency.measurement(
            NAME,
            RUNTIME,
            "worker defaults (concurrency=1)",
            "default",
            delays,
            noise.stop(),
        )
    ]


async def _cost(ctx: Context, dsn: str, concurrency: int) -> list[Measurement]:
    jobs = ctx.settings.sizes.cost_jobs
    bench = Bench(dsn)
    statements = database.enable_statements(dsn, ctx.server)

    async def defer() -> None:
        async with bench.app.open_async():
            await bench.prefill(jobs)

    async def drain() -> None:
        async with bench.app.open_async():
            await bench.drain(ctx, concurrency, jobs)

    results = await cost.measure(
        ctx,
        library=NAME,
        database_key=NAME,
        runtime=RUNTIME,
        jobs=jobs,
        phases=[
            cost.Phase("cost-defer", "batch_defer_async, 1,000 per call", defer),
            cost.Phase("cost-drain", f"concurrency={concurrency}", drain),
        ],
        reset=bench.reset,
        statements=statements,
    )
    return results
