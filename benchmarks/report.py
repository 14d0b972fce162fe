"""The tables: every measurement, the side-by-side summary, and the targets.

Tables are Markdown, so a run pastes into ``docs/benchmarks.md`` as is.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Final

from .results import OURS, Measurement

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

PEER_TITLES: Final = {"procrastinate": "Procrastinate", "pgqueuer": "PgQueuer"}


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [
        max(len(str(cell)) for cell in column)
        for column in zip(headers, *rows, strict=False)
    ]
    lines = [
        "| "
        + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False))
        + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += [
        "| "
        + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False))
        + " |"
        for row in rows
    ]
    return "\n".join(lines)


def result_text(m: Measurement) -> str:
    """The figure of a measurement, in the units of its scenario."""
    e = m.extra
    if m.scenario == "latency":
        return (
            f"p50 {e['p50_ms']:.2f} · p95 {e['p95_ms']:.2f} · "
            f"p99 {e['p99_ms']:.2f} · max {e['max_ms']:.2f} ms"
        )
    if m.scenario.startswith("cost"):
        statements = e.get("statements_per_job")
        return (
            f"WAL {e['wal_bytes_per_job']:,.0f} B/job · "
            f"{e['transactions_per_job']:.3g} xact/job · "
            f"{'n/a' if statements is None else f'{statements:.3g}'} stmt/job"
        )
    text = f"{m.rate or 0:,.0f} jobs/s"
    if m.scenario == "waiters":
        text += f" · {e['connections_max']} connections at most"
        if e.get("refused"):
            text += f" · {e['refused']} refused"
    if m.scenario == "sustained":
        text = f"in {e['in_rate']:,.0f}/s · done {text} · {e['verdict']}"
    if "spread" in e:
        text += f" (±{e['spread'] * 50:.0f}%)"
    if "incomplete" in e:
        text += f" INCOMPLETE: {e['incomplete']}"
    return text


def noise_text(m: Measurement) -> str:
    """Checkpoints and other databases' transactions during the run: the
    server is shared, and each checkpoint makes every page's next write a
    full-page write."""
    checkpoints = m.extra.get("checkpoints")
    others = m.extra.get("other_transactions")
    if checkpoints is None and others is None:
        return ""
    return f"{checkpoints or 0:g} ckpt · {others or 0:g} xact"


def measurements_table(measurements: Sequence[Measurement]) -> str:
    rows = [
        [
            m.scenario,
            m.library,
            m.runtime,
            m.settings,
            m.role,
            f"{m.jobs:,}",
            result_text(m),
            noise_text(m),
        ]
        for m in measurements
    ]
    return table(
        [
            "scenario",
            "library",
            "runtime",
            "settings",
            "role",
            "jobs",
            "result",
            "noise (other dbs)",
        ],
        rows,
    )


@dataclasses.dataclass(frozen=True)
class Row:
    """A line of the side-by-side table: which measurement, which figure."""

    title: str
    scenario: str
    role: str | None
    value: Callable[[Measurement], float | None]
    higher_is_better: bool
    fmt: str


def _rate(m: Measurement) -> float | None:
    return m.rate


def _extra(key: str) -> Callable[[Measurement], float | None]:
    return lambda m: m.extra.get(key)


ROWS: Final = (
    Row("defer, one per call (jobs/s)", "defer-single", None, _rate, True, ",.0f"),
    Row("defer, batches of 1,000 (jobs/s)", "defer-batch", None, _rate, True, ",.0f"),
    Row("drain, best settings (jobs/s)", "drain", "best", _rate, True, ",.0f"),
    Row(
        "drain, best: client CPU per job (µs)",
        "drain",
        "best",
        _extra("client_cpu_us_per_job"),
        False,
        ",.0f",
    ),
    Row(
        "drain, best: server CPU per job (µs)",
        "drain",
        "best",
        _extra("server_cpu_us_per_job"),
        False,
        ",.0f",
    ),
    Row(
        "drain, default: client CPU per job (µs)",
        "drain",
        "default",
        _extra("client_cpu_us_per_job"),
        False,
        ",.0f",
    ),
    Row("drain, default settings (jobs/s)", "drain", "default", _rate, True, ",.0f"),
    Row("sustained, done (jobs/s)", "sustained", None, _rate, True, ",.0f"),
    Row("latency p50 (ms)", "latency", None, _extra("p50_ms"), False, ".2f"),
    Row("latency p95 (ms)", "latency", None, _extra("p95_ms"), False, ".2f"),
    Row("latency p99 (ms)", "latency", None, _extra("p99_ms"), False, ".2f"),
    Row("latency max (ms)", "latency", None, _extra("max_ms"), False, ".2f"),
    Row("sync drain (jobs/s)", "drain-sync", "best", _rate, True, ",.0f"),
    Row(
        "drain, 1 ms jobs, concurrency 16 (jobs/s)",
        "sleepy-16",
        None,
        _rate,
        True,
        ",.0f",
    ),
    Row(
        "drain, 1 ms jobs, concurrency 64 (jobs/s)",
        "sleepy-64",
        None,
        _rate,
        True,
        ",.0f",
    ),
    Row(
        "drain, best, small table (jobs/s)", "backlog-small", None, _rate, True, ",.0f"
    ),
    Row("drain, best, big backlog (jobs/s)", "backlog", None, _rate, True, ",.0f"),
    Row(
        "big backlog vs small table",
        "backlog",
        None,
        _extra("vs_small_table"),
        True,
        ".2f",
    ),
    Row("drain, best, no limit (jobs/s)", "limits-none", None, _rate, True, ",.0f"),
    Row("drain, best, limits set (jobs/s)", "limits", None, _rate, True, ",.0f"),
    Row("limits set vs none", "limits", None, _extra("vs_no_limit"), True, ".2f"),
    Row("waiters, concurrent (waits/s)", "waiters", None, _rate, True, ",.0f"),
    Row(
        "waiters: most connections",
        "waiters",
        None,
        _extra("connections_max"),
        False,
        ",.0f",
    ),
    Row(
        "WAL per job, defer (B)",
        "cost-defer",
        None,
        _extra("wal_bytes_per_job"),
        False,
        ",.0f",
    ),
    Row(
        "WAL per job, drain (B)",
        "cost-drain",
        None,
        _extra("wal_bytes_per_job"),
        False,
        ",.0f",
    ),
    Row(
        "transactions per job, drain",
        "cost-drain",
        None,
        _extra("transactions_per_job"),
        False,
        ".3g",
    ),
)


def find(
    measurements: Sequence[Measurement],
    library: str,
    scenario: str,
    role: str | None,
    runtime: str | None = None,
) -> Measurement | None:
    for m in measurements:
        if (
            m.library == library
            and m.scenario == scenario
            and (role is None or m.role == role)
            and (runtime is None or m.runtime == runtime)
        ):
            return m
    return None


def advantage(
    ours: float | None, other: float | None, higher_is_better: bool
) -> float | None:
    """How many times better ``ours`` is than ``other`` (>1: ours is better)."""
    if not ours or not other:
        return None
    return ours / other if higher_is_better else other / ours


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def side_by_side(measurements: Sequence[Measurement], peers: Sequence[str]) -> str:
    headers = ["scenario", "ours asyncio", "ours trio", "trio vs asyncio"]
    for peer in peers:
        headers += [
            f"{PEER_TITLES[peer]} (asyncio only)",
            f"ours vs {PEER_TITLES[peer]}",
        ]
    rows = []
    for row in ROWS:
        asyncio_m = find(measurements, OURS, row.scenario, row.role, "asyncio")
        trio_m = find(measurements, OURS, row.scenario, row.role, "trio")
        ours_value = row.value(asyncio_m) if asyncio_m else None
        trio_value = row.value(trio_m) if trio_m else None
        cells = [
            row.title,
            _cell(ours_value, row.fmt),
            _cell(trio_value, row.fmt),
            _ratio(advantage(trio_value, ours_value, row.higher_is_better)),
        ]
        for peer in peers:
            peer_m = find(measurements, peer, row.scenario, row.role)
            peer_value = row.value(peer_m) if peer_m else None
            cells += [
                _cell(peer_value, row.fmt),
                _ratio(advantage(ours_value, peer_value, row.higher_is_better)),
            ]
        if any(cell != "-" for cell in cells[1:]):
            rows.append(cells)
    return table(headers, rows)
