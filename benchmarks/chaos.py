"""The chaos run: jobs keep their promise while workers die and PostgreSQL
restarts.

``python -m benchmarks.chaos --dsn DSN [--restart-command CMD]`` creates a
database of its own on the cluster of ``DSN`` (dropped at the end), defers
``--jobs`` jobs, runs ``--workers`` worker processes (alternately on asyncio
and Trio), SIGKILLs one every ``--kill-every`` seconds and starts a
replacement, runs ``--restart-command`` once (a PostgreSQL restart) when a
third of the jobs are done, and waits until every job is finished. Then it
prints:

- lost: jobs that did not succeed (0 expected);
- doing: jobs left ``doing`` (0 expected);
- duplicates: executions beyond one per job, which at-least-once delivery
  allows for the jobs a killed worker had started and not yet written: those
  running, and those ended whose outcomes were on their way to the database
  (as many again at most, at this job length): at most kills x 2 x
  ``--concurrency``. (Jobs a worker claimed ahead and never started do not
  run twice: they are only recovered.)

Each job records its execution in a table of its own (a separate
connection, committed before the job's work), so that an execution cut short
by a kill still counts. Not part of CI (it takes a while and restarts a
server): point it at a throwaway cluster, never at one other people use.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import random
import shlex
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import psycopg
from psycopg import sql

import procrastinate_anyio as pa

STALLED_WORKER_TIMEOUT_SECONDS = 3.0
RUNS_TABLE = "chaos_runs"


def make_app(dsn: str) -> pa.App:
    app = pa.App(
        connector=pa.PsycopgConnector(dsn, max_size=4),
        worker_defaults={
            "stalled_worker_timeout": STALLED_WORKER_TIMEOUT_SECONDS,
            "update_heartbeat_interval": 0.5,
            "fetch_job_polling_interval": 0.5,
            # A restart or a kill must never fail a job here: the run
            # measures loss, not the crash bound.
            "max_crash_recoveries": 1000,
        },
    )
    return app


def worker_main(dsn: str, backend: str, concurrency: int, job_seconds: float) -> None:
    """One worker process: runs ``chaos`` jobs until SIGTERM (or SIGKILL)."""
    import anyio

    from procrastinate_anyio.connectors.postgres import connect

    app = make_app(dsn)
    state: dict[str, Any] = {}

    @app.task(name="chaos", pass_context=True)
    async def chaos(context: pa.JobContext) -> None:
        # The execution is recorded (committed) before the work: a kill
        # during the work still counts it.
        if "lock" not in state:
            state["lock"] = anyio.Lock()
        async with state["lock"]:
            for attempt in itertools.count():
                try:
                    if state.get("conn") is None or state["conn"].closed:
                        state["conn"] = await connect(dsn, autocommit=True)
                    await state["conn"].execute(
                        f"INSERT INTO {RUNS_TABLE} (job_id, pid) VALUES (%s, %s)".encode(),
                        (context.job.id, os.getpid()),
                    )
                    break
                except psycopg.OperationalError:
                    # PostgreSQL restarting: the job waits, as work would.
                    state["conn"] = None
                    await anyio.sleep(min(0.1 * 2**attempt, 2.0))
        await anyio.sleep(job_seconds)

    app.run_worker_sync(concurrency=concurrency, backend=backend)


def admin_dsn_for(dsn: str, dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(dsn, dbname=dbname)


def query(dsn: str, text: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cursor = conn.execute(text.encode(), params or None)
        return cursor.fetchall() if cursor.description else []


def retrying_query(dsn: str, text: str, *params: Any) -> list[tuple[Any, ...]]:
    """``query``, retried while the server restarts."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return query(dsn, text, *params)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.chaos", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--dsn", required=True, help="a throwaway cluster's admin DSN")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--job-seconds", type=float, default=0.05)
    parser.add_argument("--kill-every", type=float, default=2.5)
    parser.add_argument(
        "--restart-command",
        default=None,
        help="shell command that restarts PostgreSQL, run once (none: no restart)",
    )
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument(
        "--worker", nargs=2, metavar=("DSN", "BACKEND"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args.worker[0], args.worker[1], args.concurrency, args.job_seconds)
        return 0

    dbname = f"pa_chaos_{uuid.uuid4().hex[:8]}"
    query(args.dsn, f"CREATE DATABASE {dbname}")
    dsn = admin_dsn_for(args.dsn, dbname)
    try:
        return run(args, dsn)
    finally:
        retrying_query(
            args.dsn,
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            .format(sql.Identifier(dbname))
            .as_string(),
        )


def run(args: argparse.Namespace, dsn: str) -> int:
    app = make_app(dsn)
    app.task(name="chaos")(lambda: None)
    with app.open():
        app.schema_manager.apply_schema()
        query(dsn, f"CREATE TABLE {RUNS_TABLE} (job_id bigint, pid int)")
        for start in range(0, args.jobs, 1000):
            app.configure_task("chaos").batch_defer(
                *({} for _ in range(min(1000, args.jobs - start)))
            )
    backends = itertools.cycle(["asyncio", "trio"])
    log_dir = os.environ.get("CHAOS_LOG_DIR")

    def start_worker() -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "benchmarks.chaos", "--dsn", dsn]
        command += ["--concurrency", str(args.concurrency)]
        command += ["--job-seconds", str(args.job_seconds)]
        command += ["--worker", dsn, next(backends)]
        out = (
            open(os.path.join(log_dir, f"worker-{time.time_ns()}.log"), "wb")  # noqa: SIM115  # owned by the process
            if log_dir
            else subprocess.DEVNULL
        )
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)

    workers = [start_worker() for _ in range(args.workers)]
    kills = restarts = 0
    started = time.monotonic()
    next_kill = started + args.kill_every
    rng = random.Random(0)

    def finished() -> int:
        rows = retrying_query(
            dsn, "SELECT count(*) FROM pa_jobs WHERE status NOT IN ('todo', 'doing')"
        )
        return int(rows[0][0])

    try:
        while (done := finished()) < args.jobs:
            now = time.monotonic()
            if now - started > args.timeout:
                print(f"timed out with {done}/{args.jobs} jobs finished")
                break
            if args.restart_command and not restarts and done >= args.jobs // 3:
                print(f"restarting PostgreSQL at {done}/{args.jobs} jobs finished")
                subprocess.run(shlex.split(args.restart_command), check=True)
                restarts += 1
            if now >= next_kill and done < args.jobs * 0.9:
                victim = rng.randrange(len(workers))
                workers[victim].send_signal(signal.SIGKILL)
                workers[victim].wait()
                workers[victim] = start_worker()
                kills += 1
                next_kill = now + args.kill_every
            time.sleep(0.2)
    finally:
        for process in workers:
            process.send_signal(signal.SIGTERM)
        for process in workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
            if process.poll() is None:
                process.kill()
                process.wait()

    elapsed = time.monotonic() - started
    statuses = dict(
        retrying_query(dsn, "SELECT status::text, count(*) FROM pa_jobs GROUP BY 1")
    )
    ((runs, distinct),) = retrying_query(
        dsn, f"SELECT count(*), count(DISTINCT job_id) FROM {RUNS_TABLE}"
    )
    lost = args.jobs - statuses.get("succeeded", 0)
    doing = statuses.get("doing", 0)
    duplicates = runs - distinct
    bound = kills * 2 * args.concurrency  # running + outcomes in flight
    print(
        f"jobs {args.jobs}, workers {args.workers} x concurrency {args.concurrency}, "
        f"kills {kills}, PostgreSQL restarts {restarts}, {elapsed:.1f} s"
    )
    print(f"statuses: {statuses}")
    print(f"lost {lost}, doing {doing}, duplicates {duplicates} (bound {bound})")
    ok = lost == 0 and doing == 0 and duplicates <= bound
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
