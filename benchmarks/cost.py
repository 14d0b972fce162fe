"""Scenario 6: what a job costs the server.

Two phases, each between two readings of the server's counters, with every
connection of the library closed before each reading (a backend writes its
statistics when it exits):

- defer: N jobs in batches of 1,000;
- drain: one worker (best setting) runs them.

Per job: WAL bytes (``pg_current_wal_lsn()``, server-wide: anything else
writing on the server shows up too), transactions of the benchmark database
(``pg_stat_database``: in autocommit one statement is one transaction) and
top-level statements (``pg_stat_statements``, "n/a" unless the server preloads
it; the server configuration is left alone). A CHECKPOINT precedes the defer
phase, none separates the phases (as in steady state, where a page pays one
full-page write per checkpoint cycle, not one per phase). With ``--repeat``
the least WAL of the rounds is kept: other work can only add to it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from . import config, database, ours
from .results import OURS, Measurement

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .ours import Context


@dataclasses.dataclass(frozen=True)
class Phase:
    """How one phase of a library is run and labelled."""

    scenario: str
    settings: str
    run: Callable[[], Awaitable[Any]]


async def measure(
    ctx: Context,
    *,
    library: str,
    database_key: str,
    runtime: str,
    jobs: int,
    phases: list[Phase],
    reset: Callable[[], object],
    statements: bool,
) -> list[Measurement]:
    """Run the phases in order (``repeat`` times, ``reset`` before each
    round), each between two readings of the counters of the database
    ``ctx.settings.database(database_key)``. Each phase's ``run`` opens and
    closes its own connections."""
    admin = ctx.settings.admin_dsn
    dbname = ctx.settings.database(database_key)
    deltas: dict[str, list[dict[str, float | None]]] = {p.scenario: [] for p in phases}
    for _ in range(ctx.settings.repeat):
        reset()
        await anyio.to_thread.run_sync(database.execute, admin, "CHECKPOINT")
        for phase in phases:
            ctx.progress.step(
                f"cost, {phase.scenario} {jobs:,} jobs: {library} on {runtime}"
            )
            noise = database.Noise(admin, dbname)
            before = await anyio.to_thread.run_sync(
                database.read_counters, admin, dbname, statements
            )
            await anyio.to_thread.run_sync(noise.start)
            await phase.run()
            after = await anyio.to_thread.run_sync(
                database.read_counters, admin, dbname, statements
            )
            seen = await anyio.to_thread.run_sync(noise.stop)
            deltas[phase.scenario].append(
                {**after.minus(before, admin), **{k: float(v) for k, v in seen.items()}}
            )
    reset()
    results = []
    for phase in phases:
        # WAL is server-wide: other work (and checkpoints: full-page writes)
        # only adds to it, so the least is the best estimate.
        delta = min(deltas[phase.scenario], key=lambda d: d["wal_bytes"] or 0.0)
        per_job = {
            f"{name}_per_job": None if value is None else round(value / jobs, 3)
            for name, value in delta.items()
            if name in ("wal_bytes", "transactions", "statements")
        }
        results.append(
            Measurement(
                scenario=phase.scenario,
                library=library,
                runtime=runtime,
                settings=phase.settings,
                role="best",
                jobs=jobs,
                extra={**per_job, **delta},
            )
        )
    return results


async def run(ctx: Context, runtime: str) -> list[Measurement]:
    jobs = ctx.settings.sizes.cost_jobs
    cfg = config.BEST_DRAIN
    bench = ctx.bench()
    statements = database.enable_statements(bench.dsn, ctx.server)

    async with bench.app.open_async():  # warm-up, with the same settings
        bench.reset()
        await ours.prefill(bench.noop, ctx.settings.sizes.warmup_jobs)
        await ours.run_worker_timed(
            bench.app, ctx.progress, None, wait=False, **ours.worker_options(cfg)
        )
        bench.reset()

    async def defer() -> None:
        async with bench.app.open_async():
            await ours.prefill(bench.noop, jobs)

    async def drain() -> None:
        async with bench.app.open_async():
            await ours.run_worker_timed(
                bench.app, ctx.progress, jobs, wait=False, **ours.worker_options(cfg)
            )

    results = await measure(
        ctx,
        library=OURS,
        database_key="ours",
        runtime=ours.label(runtime),
        jobs=jobs,
        phases=[
            Phase("cost-defer", "batch_defer_async, 1,000 per call", defer),
            Phase("cost-drain", cfg.label(), drain),
        ],
        reset=bench.reset,
        statements=statements,
    )
    return results
