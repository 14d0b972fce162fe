"""PgQueuer, the same defer, drain, latency and cost scenarios.

Asyncio only: PgQueuer does not run on Trio. Its own API does the work: the
schema through ``Queries.install()`` (durable: its default), ``Queries.enqueue``
(a scalar for one job, lists for a batch) and ``PgQueuer.run(mode=drain)`` on
asyncpg connections, as in its quickstart and its ``tools/benchmark.py``.

Settings: its defaults (one ``PgQueuer``, ``batch_size=10``, the standard
asyncio loop), and the knobs its benchmark tool documents, swept: consumers
(``PgQueuer`` instances, one connection each, in one process) x ``batch_size``,
on uvloop, the loop its CLI (``pgq run``) uses when installed.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from importlib.metadata import version
from typing import TYPE_CHECKING, Any, Final

import anyio
import asyncpg  # type: ignore[import-untyped, import-not-found, unused-ignore]  # the bench group installs it
from pgqueuer import PgQueuer  # type: ignore[import-not-found, unused-ignore]
from pgqueuer.db import AsyncpgDriver  # type: ignore[import-not-found, unused-ignore]
from pgqueuer.domain.types import QueueExecutionMode  # type: ignore[import-not-found, unused-ignore]
from pgqueuer.queries import Queries  # type: ignore[import-not-found, unused-ignore]
from psycopg.conninfo import conninfo_to_dict

from . import cost, database, latency, peers
from .ours import Probe, run_on

if TYPE_CHECKING:
    from .ours import Context
    from .results import Measurement

NAME: Final = "pgqueuer"
TABLES: Final = (
    "pgqueuer",
    "pgqueuer_log",
    "pgqueuer_statistics",
    "pgqueuer_schedules",
)


@dataclasses.dataclass(frozen=True)
class Point:
    consumers: int
    batch_size: int
    loop: str  # "asyncio" or "uvloop"

    def label(self) -> str:
        return f"consumers={self.consumers} batch_size={self.batch_size}"

    def runtime(self) -> str:
        return "asyncio+uvloop" if self.loop == "uvloop" else "asyncio"


DEFAULT: Final = Point(1, 10, "asyncio")
SWEEP: Final = (
    Point(1, 10, "uvloop"),
    Point(5, 10, "uvloop"),
    Point(2, 50, "uvloop"),
    Point(1, 100, "uvloop"),
)


def connect(dsn: str) -> Any:
    """An asyncpg connection (asyncpg takes URLs, not libpq key=value strings)."""
    params = conninfo_to_dict(dsn)
    return asyncpg.connect(
        host=params.get("host"),
        port=params.get("port"),
        user=params.get("user"),
        password=params.get("password"),
        database=params.get("dbname"),
    )


def library_version() -> str:
    return f"{NAME} {version('pgqueuer')} (asyncpg {version('asyncpg')})"


@dataclasses.dataclass
class Producer:
    """A ``Queries`` on a connection of its own, for enqueueing."""

    connection: Any
    queries: Any

    @classmethod
    async def connect(cls, dsn: str) -> Producer:
        connection = await connect(dsn)
        return cls(connection, Queries(AsyncpgDriver(connection)))

    async def enqueue(self, jobs: int, batch_size: int = 1000) -> None:
        for start in range(0, jobs, batch_size):
            size = min(batch_size, jobs - start)
            await self.queries.enqueue(
                ["noop"] * size, [str(i).encode() for i in range(size)], [0] * size
            )

    async def close(self) -> None:
        await self.connection.close()


async def _drain(
    ctx: Context, dsn: str, point: Point, total: int | None
) -> tuple[float, int]:
    """Run ``point.consumers`` PgQueuer instances in drain mode, each on its
    own connection (opened before the clock starts); returns the seconds the
    drain took and how many jobs ran."""
    done = 0

    async def noop(job: Any) -> None:
        nonlocal done
        done += 1

    async def consume(pgq: Any) -> None:
        await pgq.run(batch_size=point.batch_size, mode=QueueExecutionMode.drain)

    connections = [await connect(dsn) for _ in range(point.consumers)]
    pgqs = []
    for connection in connections:
        pgq = PgQueuer(AsyncpgDriver(connection))
        pgq.entrypoint("noop")(noop)
        pgqs.append(pgq)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(ctx.progress.watch, lambda: done, total)
            started = time.perf_counter()
            async with anyio.create_task_group() as consumers:
                for pgq in pgqs:
                    consumers.start_soon(consume, pgq)
            seconds = time.perf_counter() - started
            tg.cancel_scope.cancel()
        ctx.progress.end_watch()
    finally:
        for connection in connections:
            await connection.close()
    return seconds, done


async def _drain_point(ctx: Context, dsn: str, point: Point, role: str) -> Measurement:
    jobs = ctx.settings.sizes.drain_jobs
    producer = await Producer.connect(dsn)

    async def prepare() -> None:
        database.reset_tables(dsn, TABLES)
        await producer.enqueue(ctx.settings.sizes.warmup_jobs)
        await _drain(ctx, dsn, point, None)
        database.reset_tables(dsn, TABLES)
        await producer.enqueue(jobs)
        database.settle(ctx.settings.admin_dsn, dsn, TABLES)

    try:
        return await peers.timed_drains(
            ctx,
            library=NAME,
            runtime=point.runtime(),
            settings=point.label(),
            role=role,
            jobs=jobs,
            prepare=prepare,
            drain=functools.partial(_drain, ctx, dsn, point, jobs),
        )
    finally:
        await producer.close()


class Runner:
    """PgQueuer's scenarios, one at a time (``__main__`` interleaves the
    libraries scenario by scenario, so that drifting machine load hits all
    of them alike)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.dsn = database.recreate_database(
            ctx.settings.admin_dsn, ctx.settings.database(NAME)
        )
        run_on("asyncio", _setup, self.dsn)
        self.best_point = SWEEP[-1]

    def run(self, scenario: str) -> list[Measurement]:
        ctx, dsn = self.ctx, self.dsn
        if scenario == "defer":
            return run_on("asyncio", _defer, ctx, dsn)
        if scenario == "drain":
            points = [run_on(DEFAULT.loop, _drain_point, ctx, dsn, DEFAULT, "default")]
            points += [
                run_on(p.loop, _drain_point, ctx, dsn, p, "sweep") for p in SWEEP
            ]
            results = peers.with_best(points)
            best = results[-1]
            self.best_point = next(
                p
                for p in (DEFAULT, *SWEEP)
                if p.label() == best.settings and p.runtime() == best.runtime
            )
            return results
        if scenario == "latency":
            return run_on(DEFAULT.loop, _latency, ctx, dsn)
        if scenario == "cost":
            return run_on(self.best_point.loop, _cost, ctx, dsn, self.best_point)
        return []  # sustained and sync: procrastinate_anyio only


async def _setup(dsn: str) -> list[Measurement]:
    producer = await Producer.connect(dsn)
    try:
        await producer.queries.install()
    finally:
        await producer.close()
    return []


async def _defer(ctx: Context, dsn: str) -> list[Measurement]:
    producer = await Producer.connect(dsn)

    async def single(jobs: int) -> None:
        for i in range(jobs):
            await producer.queries.enqueue("noop", str(i).encode(), 0)

    try:
        await producer.enqueue(200)  # warm-up
        return await peers.timed_defers(
            ctx,
            NAME,
            functools.partial(database.reset_tables, dsn, TABLES),
            peers.DeferCalls(
                single=single,
                single_settings="Queries.enqueue, one job per call",
                batch=producer.enqueue,
                batch_settings="Queries.enqueue with lists, 1,000 per call",
            ),
        )
    finally:
        await producer.close()


async def _latency(ctx: Context, dsn: str) -> list[Measurement]:
    sizes = ctx.settings.sizes
    probe = Probe()
    database.reset_tables(dsn, TABLES)
    ctx.progress.step(f"latency, {sizes.latency_samples:,} samples: {NAME} on asyncio")
    connection = await connect(dsn)
    pgq = PgQueuer(AsyncpgDriver(connection))

    @pgq.entrypoint("probe")
    async def probe_task(job: Any) -> None:
        probe.hit()

    producer = await Producer.connect(dsn)
    noise = ctx.noise(NAME)
    noise.start()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(pgq.run)
            await anyio.sleep(0.5)  # its run() has no readiness signal
            delays = await latency.sample(
                probe,
                lambda: producer.queries.enqueue("probe", None, 0),
                sizes.latency_samples,
                sizes.latency_gap_seconds,
            )
            pgq.shutdown.set()
    finally:
        await producer.close()
        await connection.close()
    database.reset_tables(dsn, TABLES)
    return [
        latency.measurement(
            NAME,
            "asyncio",
            DEFAULT.label() + " (defaults)",
            "default",
            delays,
            noise.stop(),
        )
    ]


async def _cost(ctx: Context, dsn: str, point: Point) -> list[Measurement]:
    jobs = ctx.settings.sizes.cost_jobs
    statements = database.enable_statements(dsn, ctx.server)

    async def defer() -> None:
        producer = await Producer.connect(dsn)
        try:
            await producer.enqueue(jobs)
        finally:
            await producer.close()

    async def drain() -> None:
        await _drain(ctx, dsn, point, jobs)

    results = await cost.measure(
        ctx,
        library=NAME,
        database_key=NAME,
        runtime=point.runtime(),
        jobs=jobs,
        phases=[
            cost.Phase(
                "cost-defer", "Queries.enqueue with lists, 1,000 per call", defer
            ),
            cost.Phase("cost-drain", point.label(), drain),
        ],
        reset=functools.partial(database.reset_tables, dsn, TABLES),
        statements=statements,
    )
    return results
