"""The performance targets (DESIGN.md section 4 and the performance issue),
checked against a run."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from .report import ROWS, advantage, find, table
from .results import OURS, Measurement

if TYPE_CHECKING:
    from collections.abc import Sequence

BATCH_DEFER_TARGET = 50_000.0
TRIO_TOLERANCE = 0.9  # trio at least 90% as good as asyncio
PROCRASTINATE_FACTOR = 20.0
PGQUEUER_BEST_FACTOR = 1.5
BACKLOG_FACTOR = 0.8


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    measured: str
    met: bool | None  # None: not measured in this run

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _drain_vs(
    measurements: Sequence[Measurement], peer: str, factor: float, role: str = "best"
) -> list[Target]:
    """Our drain against the peer's, with the same role (best or default)."""
    peer_m = find(measurements, peer, "drain", role)
    out = []
    for runtime in ("asyncio", "trio"):
        ours = find(measurements, OURS, "drain", role, runtime)
        name = f"drain {role} ({runtime}) ≥ {factor:g}x {peer} {role}"
        if ours is None or peer_m is None or not peer_m.rate or not ours.rate:
            out.append(Target(name, "not measured", None))
            continue
        ratio = ours.rate / peer_m.rate
        out.append(
            Target(
                name,
                f"{ours.rate:,.0f} vs {peer_m.rate:,.0f} jobs/s "
                f"({peer_m.settings}, {peer_m.runtime}) = {ratio:.2f}x",
                ratio >= factor,
            )
        )
    return out


def _below_peer(
    measurements: Sequence[Measurement],
    peer: str,
    scenario: str,
    role: str | None,
    key: str,
    title: str,
    unit: str,
) -> list[Target]:
    """Our figure ``key`` (lower is better) below the peer's, per runtime."""
    peer_m = find(measurements, peer, scenario, role)
    theirs = None if peer_m is None else peer_m.extra.get(key)
    out = []
    for runtime in ("asyncio", "trio"):
        ours_m = find(measurements, OURS, scenario, role, runtime)
        mine = None if ours_m is None else ours_m.extra.get(key)
        name = f"{title} ({runtime}) < {peer}"
        if mine is None or theirs is None:
            out.append(Target(name, "not measured", None))
            continue
        out.append(Target(name, f"{mine:,.2f} vs {theirs:,.2f} {unit}", mine < theirs))
    return out


def check(measurements: Sequence[Measurement]) -> list[Target]:
    """The targets of the performance issue: defaults at least PgQueuer's
    defaults, best 1.5x PgQueuer's best with less client CPU per job, latency
    below PgQueuer's, the big backlog at 0.8x the small table, Trio within 10%
    of asyncio everywhere."""
    targets = _drain_vs(measurements, "pgqueuer", 1.0, role="default")
    targets += _drain_vs(measurements, "pgqueuer", PGQUEUER_BEST_FACTOR)
    targets += _below_peer(
        measurements,
        "pgqueuer",
        "drain",
        "best",
        "client_cpu_us_per_job",
        "drain best, client CPU per job",
        "µs",
    )
    for key in ("p50_ms", "p99_ms"):
        targets += _below_peer(
            measurements, "pgqueuer", "latency", None, key, f"latency {key[:3]}", "ms"
        )
    targets += _drain_vs(measurements, "procrastinate", PROCRASTINATE_FACTOR)
    for runtime in ("asyncio", "trio"):
        backlog = find(measurements, OURS, "backlog", None, runtime)
        ratio = None if backlog is None else backlog.extra.get("vs_small_table")
        targets.append(
            Target(
                f"big backlog ({runtime}) ≥ {BACKLOG_FACTOR:g}x small table",
                "not measured" if ratio is None else f"{ratio:.2f}x",
                None if ratio is None else ratio >= BACKLOG_FACTOR,
            )
        )
    for runtime in ("asyncio", "trio"):
        batch = find(measurements, OURS, "defer-batch", None, runtime)
        targets.append(
            Target(
                f"batch defer ({runtime}) ≥ {BATCH_DEFER_TARGET:,.0f} jobs/s",
                f"{batch.rate:,.0f} jobs/s" if batch and batch.rate else "not measured",
                None
                if not batch or not batch.rate
                else batch.rate >= BATCH_DEFER_TARGET,
            )
        )
    targets.append(_trio_target(measurements))
    return targets


def _trio_target(measurements: Sequence[Measurement]) -> Target:
    """Trio within 10% of asyncio on every figure of the side-by-side table
    (each latency percentile but max, which is one sample)."""
    worst: tuple[float, str] | None = None
    for row in ROWS:
        if row.title.startswith(
            (
                "latency max",
                "WAL",
                "transactions",
                "drain, best: client",
                "drain, best: server",
                "drain, default: client",
            )
        ):
            continue
        a = find(measurements, OURS, row.scenario, row.role, "asyncio")
        t = find(measurements, OURS, row.scenario, row.role, "trio")
        if a is None or t is None:
            continue
        ratio = advantage(row.value(t), row.value(a), row.higher_is_better)
        if ratio is not None and (worst is None or ratio < worst[0]):
            worst = (ratio, row.title)
    name = "trio within 10% of asyncio, every scenario"
    if worst is None:
        return Target(name, "not measured", None)
    return Target(
        name,
        f"worst: {worst[1]} at {worst[0]:.2f}x asyncio",
        worst[0] >= TRIO_TOLERANCE,
    )


def targets_table(targets: Sequence[Target]) -> str:
    marks = {True: "yes", False: "**NO**", None: "n/a"}
    return table(
        ["target", "measured", "met"],
        [[t.name, t.measured, marks[t.met]] for t in targets],
    )
