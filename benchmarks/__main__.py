"""``python -m benchmarks``: run the scenarios, print the tables (stdout),
progress on stderr, optionally write JSON.

Examples::

    python -m benchmarks                                   # ours, asyncio + trio
    python -m benchmarks --compare procrastinate,pgqueuer --json bench.json
    python -m benchmarks --sweep --scenarios drain,sync    # find the best settings
    python -m benchmarks --smoke                           # a few hundred jobs (CI)
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import pathlib
import platform
import subprocess
import sys
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from . import config, database, ours, report, targets
from .progress import Progress

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from .results import Measurement

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _csv(choices: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        values = tuple(v.strip() for v in text.split(",") if v.strip())
        if bad := [v for v in values if v not in choices]:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(bad)} (choose from {', '.join(choices)})"
            )
        return values

    return parse


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmarks of procrastinate_anyio, optionally side by side "
        "with Procrastinate and PgQueuer.",
    )
    add = parser.add_argument
    add("--dsn", default=os.environ.get("PA_BENCH_DSN", DEFAULT_DSN),
        help="admin DSN; benchmark databases are created next to it "
        "(env PA_BENCH_DSN, default %(default)s)")  # fmt: skip
    add("--db-prefix", default="pa_bench",
        help="prefix of the databases created and dropped (must start with pa_bench)")  # fmt: skip
    add("--backends", type=_csv(config.BACKENDS), default=("asyncio", "trio"),
        help="runtimes for procrastinate_anyio: asyncio,trio[,uvloop]")  # fmt: skip
    add("--scenarios", type=_csv(config.SCENARIOS), default=config.SCENARIOS,
        help=f"subset of {','.join(config.SCENARIOS)}")  # fmt: skip
    add("--compare", type=_csv(config.PEERS), default=(),
        help="peers to run side by side: procrastinate,pgqueuer")  # fmt: skip
    add("--jobs", type=int, help="jobs per drain (default 50,000)")
    add("--seconds", type=float, help="sustained scenario duration (default 10)")
    add("--samples", type=int, help="latency samples (default 1,000)")
    add("--backlog", type=int, metavar="N",
        help="todo jobs, and as many finished ones, in the table of the backlog "
        "scenario (default 1,000,000)")  # fmt: skip
    add("--sweep", action="store_true",
        help="sweep concurrency x fetch batch size instead of the best setting")  # fmt: skip
    add("--repeat", type=int, default=1,
        help="run each rate measurement N times and report the median")  # fmt: skip
    add("--smoke", action="store_true",
        help="a few hundred jobs per scenario: checks that everything runs")  # fmt: skip
    add("--json", metavar="PATH", help="also write the results as JSON")
    add("--pg-options", metavar="OPTIONS",
        help="libpq options for procrastinate_anyio's connections, to try a "
        "server setting without touching the server, e.g. "
        "'-c plan_cache_mode=force_custom_plan'")  # fmt: skip
    add("--keep-databases", action="store_true",
        help="do not drop the benchmark databases at the end")  # fmt: skip
    args = parser.parse_args(argv)
    if not args.db_prefix.startswith(database.ALLOWED_PREFIX):
        parser.error("--db-prefix must start with pa_bench")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def settings_from(args: argparse.Namespace) -> config.Settings:
    sizes = config.SMOKE if args.smoke else config.Sizes()
    overrides: dict[str, Any] = {}
    if args.jobs:
        overrides["drain_jobs"] = args.jobs
    if args.seconds:
        overrides["sustained_seconds"] = args.seconds
    if args.samples:
        overrides["latency_samples"] = args.samples
    if args.backlog:
        overrides["backlog"] = args.backlog
    return config.Settings(
        admin_dsn=args.dsn,
        db_prefix=args.db_prefix,
        backends=args.backends,
        scenarios=args.scenarios,
        peers=args.compare,
        sizes=dataclasses.replace(sizes, **overrides),
        sweep=args.sweep,
        repeat=args.repeat,
        keep_databases=args.keep_databases,
        pg_options=args.pg_options,
    )


def run_all(ctx: ours.Context) -> list[Measurement]:
    """Scenario by scenario: ours on each backend, then each peer, so that
    drifting machine load hits every library alike."""
    from . import (
        backlog,
        cost,
        defer,
        drain,
        latency,
        limits,
        sleepy,
        sustained,
        sync_drain,
        waiters,
    )

    modules = {
        "defer": defer,
        "drain": drain,
        "sustained": sustained,
        "latency": latency,
        "sync": sync_drain,
        "cost": cost,
        "waiters": waiters,
        "backlog": backlog,
        "sleepy": sleepy,
        "limits": limits,
    }
    peers: list[Any] = []
    for name in ctx.settings.peers:
        ctx.progress.step(
            f"creating {ctx.settings.database(name)}, applying its schema"
        )
        if name == "procrastinate":
            from . import peer_procrastinate

            peers.append(peer_procrastinate.Runner(ctx))
        else:
            from . import peer_pgqueuer

            peers.append(peer_pgqueuer.Runner(ctx))
    results: list[Measurement] = []
    for scenario in ctx.settings.scenarios:
        for backend in ctx.settings.backends:
            results += ours.run_on(backend, modules[scenario].run, ctx, backend)
        for peer in peers:
            results += peer.run(scenario)
    return results


def environment(settings: config.Settings) -> dict[str, str]:
    libraries = [ours.library_version()]
    libraries += [f"{name} {version(name)}" for name in ("anyio", "trio", "psycopg")]
    if "procrastinate" in settings.peers:
        from . import peer_procrastinate

        libraries.append(peer_procrastinate.library_version())
    if "pgqueuer" in settings.peers:
        from . import peer_pgqueuer

        libraries.append(peer_pgqueuer.library_version())
    load = os.getloadavg()
    return {
        "commit": _commit(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "libraries": ", ".join(libraries),
        "load_average": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    }


def _commit() -> str:
    """The procrastinate_anyio commit measured ("+dirty": uncommitted changes)."""
    root = pathlib.Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty=+dirty"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit or "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = settings_from(args)
    progress = Progress()
    server = database.server_info(settings.admin_dsn)
    env_before = environment(settings)
    ctx = ours.Context(settings=settings, progress=progress, server=server)
    progress.step(f"creating {settings.database('ours')}, applying the schema")
    dsn = database.recreate_database(settings.admin_dsn, settings.database("ours"))
    ours.run_on("asyncio", _apply_schema, dsn)
    try:
        measurements = run_all(ctx)
    finally:
        if not settings.keep_databases:
            for library in ("ours", *settings.peers):
                database.drop_database(settings.admin_dsn, settings.database(library))
    env = {**env_before, "load_average_end": environment(settings)["load_average"]}
    if settings.pg_options:
        env["procrastinate_anyio libpq options"] = settings.pg_options
    checked = targets.check(measurements)
    print_report(settings, server, env, measurements, checked, smoke=args.smoke)
    if args.json:
        write_json(args.json, args, settings, server, env, measurements, checked)
        progress.step(f"wrote {args.json}")
    return 0


async def _apply_schema(dsn: str) -> None:
    bench = ours.Bench(dsn)
    async with bench.app.open_async():
        await bench.app.schema_manager.apply_schema_async()


def print_report(
    settings: config.Settings,
    server: database.ServerInfo,
    env: dict[str, str],
    measurements: Sequence[Measurement],
    checked: Sequence[targets.Target],
    *,
    smoke: bool,
) -> None:
    lines = ["# Benchmark results", ""]
    if smoke:
        lines += [
            "**Smoke run**: sizes too small for the figures to mean anything.",
            "",
        ]
    lines += [f"- {line}" for line in server.header_lines()]
    lines += [f"- {key.replace('_', ' ')}: {value}" for key, value in env.items()]
    lines += [
        "- Peers run on asyncio only: Procrastinate and PgQueuer do not support Trio.",
        "",
        "## Side by side",
        "",
        report.side_by_side(measurements, settings.peers),
        "",
        "Ratios: how many times better the left figure is (>1: better; "
        "for latency and cost, lower is better).",
        "",
        "## Targets",
        "",
        targets.targets_table(checked),
        "",
        "## All measurements",
        "",
        report.measurements_table(measurements),
    ]
    print("\n".join(lines))


def write_json(
    path: str,
    args: argparse.Namespace,
    settings: config.Settings,
    server: database.ServerInfo,
    env: dict[str, str],
    measurements: Sequence[Measurement],
    checked: Sequence[targets.Target],
) -> None:
    data = {
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "argv": sys.argv[1:],
        "server": dataclasses.asdict(server),
        "environment": env,
        "sizes": dataclasses.asdict(settings.sizes),
        "measurements": [m.to_json() for m in measurements],
        "targets": [t.to_json() for t in checked],
    }
    with open(path, "w", encoding="utf-8") as file:
        json.dump(data, file, indent=2)
        file.write("\n")


if __name__ == "__main__":
    sys.exit(main())
