"""Measurements: one record per timed run, and how repeats are combined."""

from __future__ import annotations

import dataclasses
import os
import resource
import statistics
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

OURS = "procrastinate_anyio"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Measurement:
    """One timed run.

    Attributes:
        scenario: "defer-single", "defer-batch", "drain", "drain-sync",
            "sustained", "latency", "cost-defer" or "cost-drain".
        library: procrastinate_anyio, procrastinate or pgqueuer.
        runtime: asyncio, trio or uvloop (asyncio on uvloop).
        settings: the knobs, as the library spells them.
        role: "default" (the library's defaults), "best" (its best documented
            settings), "sweep" (one point of a sweep) or "" (not applicable).
        jobs: how many jobs the run handled.
        seconds: wall time of the timed region.
        rate: jobs per second, when the scenario is a rate.
        extra: scenario-specific figures (latency percentiles, WAL bytes...).
    """

    scenario: str
    library: str
    runtime: str
    settings: str
    role: str = ""
    jobs: int = 0
    seconds: float = 0.0
    rate: float | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def timed(
    *,
    scenario: str,
    library: str,
    runtime: str,
    settings: str,
    jobs: int,
    seconds: float,
    role: str = "",
    extra: Mapping[str, Any] | None = None,
) -> Measurement:
    """A rate measurement: ``jobs`` in ``seconds``, with the load average."""
    return Measurement(
        scenario=scenario,
        library=library,
        runtime=runtime,
        settings=settings,
        role=role,
        jobs=jobs,
        seconds=seconds,
        rate=jobs / seconds if seconds > 0 else None,
        extra={"load_1min": round(os.getloadavg()[0], 2), **(extra or {})},
    )


def median_run(runs: Sequence[Measurement]) -> Measurement:
    """The run of median rate; every rate is kept in ``extra["repeats"]``."""
    if len(runs) == 1:
        return runs[0]
    ordered = sorted(runs, key=lambda run: run.rate or 0.0)
    middle = ordered[len(ordered) // 2]
    rates = [round(run.rate or 0.0, 1) for run in runs]
    return dataclasses.replace(
        middle,
        extra={**middle.extra, "repeats": rates, "spread": _spread(rates)},
    )


def _spread(rates: Sequence[float]) -> float:
    """(max - min) / median: how noisy the repeats were."""
    median = statistics.median(rates)
    return round((max(rates) - min(rates)) / median, 3) if median else 0.0


def cpu_seconds() -> float:
    """CPU time of this process so far (user + system, every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def server_cpu_seconds() -> float | None:
    """CPU time of the local PostgreSQL server so far: every ``postgres``
    process (backends, WAL writer, checkpointer...), with the backends that
    ended (their time is in the postmaster's reaped-children counters). None
    when ``/proc`` does not show it (not Linux, or another machine's server:
    then the figure is left out)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    found = False
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue  # ended meanwhile, or not readable
        name_end = stat.rfind(")")
        if stat[stat.find("(") + 1 : name_end] != "postgres":
            continue
        fields = stat[name_end + 2 :].split()
        # utime, stime, cutime, cstime: fields 14-17 of proc(5).
        total += sum(int(value) for value in fields[11:15])
        found = True
    return total / tick if found else None


def cpu_per_job(
    cpu: float, jobs: int, server_cpu: float | None = None
) -> dict[str, float]:
    """The benchmark process's CPU per job: the client-side cost, which wall
    time hides when the server or the machine is the bottleneck; and the
    server's, when measured (``server_cpu``: its CPU seconds meanwhile)."""
    if not jobs:
        return {}
    out = {"client_cpu_us_per_job": round(1e6 * cpu / jobs, 1)}
    if server_cpu is not None:
        out["server_cpu_us_per_job"] = round(1e6 * server_cpu / jobs, 1)
    return out


class CpuMeter:
    """The client's and the local server's CPU over a measured interval."""

    def start(self) -> None:
        self._client = cpu_seconds()
        self._server = server_cpu_seconds()

    def per_job(self, jobs: int) -> dict[str, float]:
        client = cpu_seconds() - self._client
        server_now = server_cpu_seconds()
        server = (
            None
            if server_now is None or self._server is None
            else server_now - self._server
        )
        return cpu_per_job(client, jobs, server)


def best_of(runs: Sequence[Measurement]) -> Measurement:
    """The run with the highest rate (the "best" setting of a sweep)."""
    return max(runs, key=lambda run: run.rate or 0.0)


def percentiles_ms(samples: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max/mean of latency samples given in seconds, in ms."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49] * 1000, 3),
        "p95_ms": round(cuts[94] * 1000, 3),
        "p99_ms": round(cuts[98] * 1000, 3),
        "max_ms": round(max(samples) * 1000, 3),
        "mean_ms": round(statistics.fmean(samples) * 1000, 3),
    }
