"""procrastinate_anyio under test: the app, its no-op tasks, and the helpers
every scenario shares (run context, pre-fill, timed worker runs)."""

from __future__ import annotations

import dataclasses
import functools
import gc
import time
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio

import procrastinate_anyio as pa

from . import database
from .results import OURS, CpuMeter

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .config import DrainConfig, Settings
    from .database import ServerInfo
    from .progress import Progress

T = TypeVar("T")

TABLES: Final = ("pa_jobs", "pa_workers", "pa_periodic_defers")
NOOP: Final = "bench.noop"
NOOP_SYNC: Final = "bench.noop_sync"
PROBE: Final = "bench.probe"
SLEEPY: Final = "bench.sleepy"


@dataclasses.dataclass(frozen=True)
class Context:
    """What a scenario needs to know about the run."""

    settings: Settings
    progress: Progress
    server: ServerInfo

    def dsn(self, library: str) -> str:
        return database.dsn_for(
            self.settings.admin_dsn, self.settings.database(library)
        )

    def connect_kwargs(self) -> dict[str, Any]:
        """Connection parameters of procrastinate_anyio's connections."""
        options = self.settings.pg_options
        return {"options": options} if options else {}

    def bench(self) -> Bench:
        """A :class:`Bench` on procrastinate_anyio's database."""
        return Bench(self.dsn("ours"), self.connect_kwargs())

    def noise(self, library: str) -> database.Noise:
        return database.Noise(self.settings.admin_dsn, self.settings.database(library))


class Probe:
    """Where the latency task writes when its body starts."""

    def __init__(self) -> None:
        self.started_at = 0.0
        self.event: anyio.Event | None = None

    def hit(self) -> None:
        self.started_at = time.perf_counter()
        if self.event is not None:
            self.event.set()


class Bench:
    """An :class:`App` on the benchmark database, with the tasks the scenarios
    run: a no-op async task, a no-op sync task and the latency probe."""

    def __init__(self, dsn: str, connect_kwargs: dict[str, Any] | None = None) -> None:
        self.dsn = dsn
        self.app = pa.App(
            connector=pa.PsycopgConnector(dsn, connect_kwargs=connect_kwargs)
        )
        self.probe = Probe()
        probe = self.probe

        @self.app.task(name=NOOP)
        async def noop(i: int = 0) -> None:
            pass

        @self.app.task(name=NOOP_SYNC)
        def noop_sync(i: int = 0) -> None:
            pass

        @self.app.task(name=SLEEPY)
        async def sleepy(i: int = 0) -> None:
            await anyio.sleep(0.001)

        @self.app.task(name=PROBE)
        async def probe_task() -> None:
            probe.hit()

        self.noop = noop
        self.noop_sync = noop_sync
        self.probe_task = probe_task
        self.sleepy = sleepy

    def reset(self) -> None:
        database.reset_tables(self.dsn, TABLES)


def run_on(backend: str, func: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``anyio.run`` on a runtime name of :data:`config.BACKENDS`."""
    gc.collect()
    if backend == "uvloop":
        return anyio.run(
            func, *args, backend="asyncio", backend_options={"use_uvloop": True}
        )
    return anyio.run(func, *args, backend=backend)


async def prefill(task: pa.Task[Any, Any], jobs: int, batch_size: int = 1000) -> None:
    """Defer ``jobs`` jobs of ``task`` in batches (not timed)."""
    for start in range(0, jobs, batch_size):
        await task.batch_defer_async(
            *({"i": i} for i in range(start, min(start + batch_size, jobs)))
        )


def succeeded(worker: pa.Worker) -> int:
    return worker.statistics().jobs_done["succeeded"]


async def run_worker_timed(
    app: pa.App, progress: Progress, total: int | None, **options: Any
) -> tuple[float, pa.Worker]:
    """Run a worker until it stops (``wait=False``: when no job is left);
    returns the wall time of :meth:`Worker.run` and the worker."""
    worker = pa.Worker(app, install_signal_handlers=False, **options)
    async with anyio.create_task_group() as tg:
        tg.start_soon(progress.watch, functools.partial(succeeded, worker), total)
        gc.collect()
        started = time.perf_counter()
        await worker.run()
        elapsed = time.perf_counter() - started
        tg.cancel_scope.cancel()
    progress.end_watch()
    return elapsed, worker


def worker_options(config: DrainConfig) -> dict[str, Any]:
    return {
        "concurrency": config.concurrency,
        "fetch_batch_size": config.fetch_batch_size,
    }


async def timed_drain(
    ctx: Context,
    bench: Bench,
    task: pa.Task[Any, Any],
    config: DrainConfig,
    jobs: int,
    *,
    warmup: bool = True,
) -> tuple[float, int, dict[str, float]]:
    """Reset, warm up, pre-fill ``jobs`` jobs, and time a worker draining them.

    Returns:
        the seconds the drain took, how many jobs succeeded, and extra
        figures: client CPU per job and the noise (checkpoints, other
        databases' transactions) during the drain.
    """
    options = worker_options(config)
    if warmup:
        bench.reset()
        await prefill(task, ctx.settings.sizes.warmup_jobs)
        await run_worker_timed(bench.app, ctx.progress, None, wait=False, **options)
    bench.reset()
    await prefill(task, jobs)
    database.settle(ctx.settings.admin_dsn, bench.dsn, TABLES)
    noise = ctx.noise("ours")
    noise.start()
    meter = CpuMeter()
    meter.start()
    seconds, worker = await run_worker_timed(
        bench.app, ctx.progress, jobs, wait=False, **options
    )
    return seconds, succeeded(worker), {**noise.stop(), **meter.per_job(jobs)}


def label(runtime: str) -> str:
    """How a runtime shows in the tables."""
    return {"uvloop": "asyncio+uvloop"}.get(runtime, runtime)


def library_version() -> str:
    return f"{OURS} {pa.__version__}"
