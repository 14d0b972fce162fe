"""The performance targets of DESIGN.md section 4, checked against a run."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from .report import ROWS, advantage, find, table
from .results import OURS, Measurement

if TYPE_CHECKING:
    from collections.abc import Sequence

BATCH_DEFER_TARGET = 50_000.0
LATENCY_P50_TARGET_MS = 3.0
TRIO_TOLERANCE = 0.8  # trio at least 80% as good as asyncio
PROCRASTINATE_FACTOR = 20.0


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    measured: str
    met: bool | None  # None: not measured in this run

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _drain_vs(
    measurements: Sequence[Measurement], peer: str, factor: float
) -> list[Target]:
    peer_best = find(measurements, peer, "drain", "best")
    out = []
    for runtime in ("asyncio", "trio"):
        ours = find(measurements, OURS, "drain", "best", runtime)
        name = f"drain ({runtime}) ≥ {factor:g}x {peer} best"
        if ours is None or peer_best is None or not peer_best.rate or not ours.rate:
            out.append(Target(name, "not measured", None))
            continue
        ratio = ours.rate / peer_best.rate
        out.append(
            Target(
                name,
                f"{ours.rate:,.0f} vs {peer_best.rate:,.0f} jobs/s "
                f"({peer_best.settings}, {peer_best.runtime}) = {ratio:.2f}x",
                ratio >= factor,
            )
        )
    return out


def check(measurements: Sequence[Measurement]) -> list[Target]:
    targets = _drain_vs(measurements, "pgqueuer", 1.0)
    targets += _drain_vs(measurements, "procrastinate", PROCRASTINATE_FACTOR)
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
    for runtime in ("asyncio", "trio"):
        lat = find(measurements, OURS, "latency", None, runtime)
        p50 = lat.extra["p50_ms"] if lat else None
        targets.append(
            Target(
                f"latency p50 ({runtime}) ≤ {LATENCY_P50_TARGET_MS:g} ms",
                f"{p50:.2f} ms" if p50 is not None else "not measured",
                None if p50 is None else p50 <= LATENCY_P50_TARGET_MS,
            )
        )
    targets.append(_trio_target(measurements))
    return targets


def _trio_target(measurements: Sequence[Measurement]) -> Target:
    """Trio within 20% of asyncio on every figure of the side-by-side table
    (each latency percentile but max, which is one sample)."""
    worst: tuple[float, str] | None = None
    for row in ROWS:
        if row.title.startswith(
            ("latency max", "WAL", "transactions", "drain, best: client")
        ):
            continue
        a = find(measurements, OURS, row.scenario, row.role, "asyncio")
        t = find(measurements, OURS, row.scenario, row.role, "trio")
        if a is None or t is None:
            continue
        ratio = advantage(row.value(t), row.value(a), row.higher_is_better)
        if ratio is not None and (worst is None or ratio < worst[0]):
            worst = (ratio, row.title)
    name = "trio within 20% of asyncio, every scenario"
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
