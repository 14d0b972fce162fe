"""What a run measures: sizes, worker settings, and the command-line options."""

from __future__ import annotations

import dataclasses
from typing import Final

BACKENDS: Final = ("asyncio", "trio", "uvloop")
"""Runtimes for procrastinate_anyio: anyio's asyncio backend on the standard
event loop, Trio, and (on request only) asyncio on uvloop."""

SCENARIOS: Final = (
    "defer",
    "drain",
    "sustained",
    "latency",
    "sync",
    "cost",
    "waiters",
    "backlog",
    "sleepy",
    "limits",
)
PEERS: Final = ("procrastinate", "pgqueuer")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Sizes:
    """How much work each scenario does."""

    defer_single_jobs: int = 2_000
    defer_batch_jobs: int = 50_000
    defer_batch_size: int = 1_000
    drain_jobs: int = 50_000
    drain_default_jobs: int = 10_000
    """Drains with a library's default settings (concurrency 1: slow)."""
    procrastinate_jobs: int = 5_000
    """Procrastinate drains stay under ~1k jobs/s: 50,000 jobs would take minutes."""
    sync_jobs: int = 10_000
    sustained_seconds: float = 10.0
    producer_batch_size: int = 100
    latency_samples: int = 1_000
    latency_gap_seconds: float = 0.02
    """Pause after each latency sample, so the worker is idle again."""
    cost_jobs: int = 10_000
    warmup_jobs: int = 1_000
    waiters: int = 200
    """Concurrent ``wait_for_job`` waiters (a web application under load)."""
    backlog: int = 1_000_000
    """``todo`` jobs, and as many finished ones, in the table of the backlog drain."""
    sleepy_jobs: int = 10_000
    """Jobs of 1 ms per drain of the ``sleepy`` scenario."""


SMOKE: Final = Sizes(
    defer_single_jobs=50,
    defer_batch_jobs=1_000,
    drain_jobs=300,
    drain_default_jobs=100,
    procrastinate_jobs=100,
    sync_jobs=200,
    sustained_seconds=1.0,
    latency_samples=30,
    cost_jobs=200,
    warmup_jobs=50,
    waiters=20,
    backlog=2_000,
    sleepy_jobs=100,
)


@dataclasses.dataclass(frozen=True)
class DrainConfig:
    """The worker settings a drain sweeps."""

    concurrency: int
    fetch_batch_size: int

    def label(self) -> str:
        return (
            f"concurrency={self.concurrency} fetch_batch_size={self.fetch_batch_size}"
        )


DEFAULT_DRAIN: Final = DrainConfig(concurrency=1, fetch_batch_size=100)
"""``WorkerOptions`` defaults."""

BEST_DRAIN: Final = DrainConfig(concurrency=500, fetch_batch_size=100)
"""The best setting of a ``--sweep`` on the reference machine (docs/benchmarks.md)."""

SWEEP_DRAIN: Final = tuple(
    DrainConfig(concurrency, batch)
    for concurrency in (10, 50, 100, 200, 500, 1000)
    for batch in (10, 50, 100, 200, 500)
    if batch <= concurrency
)

SYNC_DRAIN: Final = DrainConfig(concurrency=100, fetch_batch_size=50)
"""Sync jobs run in threads: one thread per slot."""

SWEEP_SYNC: Final = (
    DrainConfig(10, 10),
    DrainConfig(20, 10),
    DrainConfig(50, 25),
    DrainConfig(50, 50),
    DrainConfig(100, 50),
    DrainConfig(100, 100),
    DrainConfig(200, 100),
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """The options of one run (see ``__main__.py``)."""

    admin_dsn: str
    db_prefix: str
    backends: tuple[str, ...]
    scenarios: tuple[str, ...]
    peers: tuple[str, ...]
    sizes: Sizes
    sweep: bool
    repeat: int
    keep_databases: bool
    pg_options: str | None = None
    """libpq ``options`` of procrastinate_anyio's connections (experiments)."""

    def database(self, library: str) -> str:
        return f"{self.db_prefix}_{library}"
