"""A small demo: defer jobs, then run a worker over them until none is left.

    python examples/demo.py [--backend asyncio|trio] [--jobs N]

It uses the database of ``PA_DSN`` (default: ``procrastinate_anyio_demo`` on
the local server), creating it if needed, and applies the schema.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import time

import anyio
import psycopg
from psycopg import sql

import procrastinate_anyio as pa

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/procrastinate_anyio_demo"
DSN = os.environ.get("PA_DSN", DEFAULT_DSN)

app = pa.App(connector=pa.PsycopgConnector(DSN))


@app.task(queue="sums", name="sum")
async def add(a: int, b: int) -> int:
    await anyio.sleep(0.01)  # pretend to do some I/O
    return a + b


@app.task(queue="reports", name="report", pass_context=True)
def report(context: pa.JobContext, title: str) -> str:
    # A sync task: it runs in a worker thread.
    return f"{title} (by {context.worker_name})"


@app.task(name="flaky", retry=pa.RetryStrategy(max_attempts=3))
async def flaky(n: int) -> None:
    raise ValueError(f"flaky #{n} always fails")


def ensure_database(dsn: str) -> None:
    """Create the demo database if it does not exist."""
    dbname = psycopg.conninfo.conninfo_to_dict(dsn).get("dbname")
    admin = psycopg.conninfo.make_conninfo(dsn, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)
        ).fetchone()
        if not exists:
            conn.execute(
                sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(dbname)))
            )


async def main(jobs: int) -> None:
    async with app.open_async():
        applied = await app.schema_manager.apply_schema_async()
        print(f"schema: {'applied ' + ', '.join(applied) if applied else 'up to date'}")
        ids = await add.batch_defer_async(*({"a": i, "b": i} for i in range(jobs)))
        await report.defer_async(title="Monthly report")
        await flaky.defer_async(n=1)
        print(f"deferred {len(ids) + 2} jobs")

        started = time.perf_counter()
        await app.run_worker(wait=False, concurrency=20, install_signal_handlers=False)
        elapsed = time.perf_counter() - started

        finished = [
            job
            for task in ("sum", "report", "flaky")
            for job in await app.job_manager.list_jobs_async(task=task, limit=100_000)
            if job.id >= ids[0]
        ]
        counts = collections.Counter(job.status.value for job in finished)
        print(f"worker done in {elapsed:.2f} s: {dict(counts)}")
        sample = await app.job_manager.get_job_async(ids[-1])
        assert sample is not None
        print(f"{sample.call_string()} -> {sample.result}")
        for job in finished:
            if job.task_name != "sum":
                outcome = (
                    job.result
                    if job.error is None
                    else f"{job.error.type}: {job.error.message}"
                )
                print(
                    f"{job.call_string()}: {job.status.value}, {job.attempts} attempt(s) -> {outcome}"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="trio")
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log what the worker does"
    )
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.CRITICAL,
        format="%(levelname)s %(name)s: %(message)s",
    )
    ensure_database(DSN)
    anyio.run(main, args.jobs, backend=args.backend)
