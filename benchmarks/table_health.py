"""Table health under sustained load: does ``pa_jobs`` stay small?

``python -m benchmarks.table_health --dsn DSN --seconds 600 --rate 200``
creates a database of its own on the cluster of ``DSN`` (dropped at the
end), then for ``--seconds`` defers ``--rate`` no-op jobs per second (in
batches, ten times a second) while one worker runs them with retention on:
finished jobs are deleted as they finish (``delete_jobs="successful"``), or
with ``--retention periodic`` kept and removed every second by the
``builtin:remove_old_jobs`` task (``max_hours`` 1 s). Every ``--every``
seconds it prints the live and dead tuples of ``pa_jobs``, the size of its
heap, of its indexes and in total, and the autovacuum runs so far. The
table's own storage settings (``fillfactor``, autovacuum scale factors) come
from ``schema.sql``; the server's autovacuum settings (``autovacuum_naptime``
is one: run it on a cluster of your own to change them) are printed at the
start.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
import uuid
from typing import Any

import anyio
import psycopg
from psycopg import sql

import procrastinate_anyio as pa

STATS = """
SELECT n_live_tup, n_dead_tup, autovacuum_count,
       pg_relation_size('pa_jobs') AS heap, pg_indexes_size('pa_jobs') AS indexes,
       pg_total_relation_size('pa_jobs') AS size,
       (SELECT count(*) FROM pa_jobs) AS rows
FROM pg_stat_user_tables WHERE relname = 'pa_jobs'
"""
SETTINGS = """
SELECT name, setting FROM pg_settings
WHERE name IN ('autovacuum_naptime', 'autovacuum_vacuum_scale_factor',
               'autovacuum_vacuum_threshold', 'autovacuum_vacuum_cost_limit',
               'autovacuum_vacuum_cost_delay')
ORDER BY name
"""


def fetch(dsn: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(query.encode()).fetchall()


async def run(args: argparse.Namespace, dsn: str) -> None:
    periodic = args.retention == "periodic"
    app = pa.App(
        connector=pa.PsycopgConnector(dsn),
        worker_defaults={
            "install_signal_handlers": False,
            "delete_jobs": "never" if periodic else "successful",
        },
    )

    @app.task(name="noop")
    async def noop() -> None: ...

    if periodic:
        cleanup = app.get_task("builtin:remove_old_jobs")
        app.periodic(cron="* * * * * *", task_kwargs={"max_hours": 1 / 3600})(cleanup)

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        for name, value in fetch(dsn, SETTINGS):
            print(f"{name} = {value}")
        print(
            f"{'t (s)':>6} {'live':>8} {'dead':>8} {'rows':>8} {'heap':>10} "
            f"{'indexes':>10} {'total':>10} autovacuums"
        )
        batch = max(1, args.rate // 10)
        async with anyio.create_task_group() as tg:
            worker = await tg.start(functools.partial(app.run_worker, concurrency=20))
            started = time.monotonic()
            next_report = started
            tick = started
            while (now := time.monotonic()) - started < args.seconds:
                await noop.batch_defer_async(*({} for _ in range(batch)))
                if now >= next_report:
                    ((live, dead, autovacuums, *sizes, rows),) = fetch(dsn, STATS)
                    kbs = " ".join(f"{int(size) // 1024:7} kB" for size in sizes)
                    print(
                        f"{now - started:6.0f} {live:8} {dead:8} {rows:8} {kbs} "
                        f"{autovacuums}",
                        flush=True,
                    )
                    next_report += args.every
                tick += 0.1
                await anyio.sleep(max(0.0, tick - time.monotonic()))
            worker.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.table_health", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--dsn", required=True, help="a cluster's admin DSN")
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--rate", type=int, default=200, help="jobs per second")
    parser.add_argument("--every", type=float, default=15, help="report period (s)")
    parser.add_argument("--retention", choices=["delete", "periodic"], default="delete")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args(argv)
    dbname = f"pa_health_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    try:
        dsn = psycopg.conninfo.make_conninfo(args.dsn, dbname=dbname)
        anyio.run(run, args, dsn, backend=args.backend)
    finally:
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(dbname)
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
