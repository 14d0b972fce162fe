"""Defer jobs from a plain script, with no event loop; a worker in another
process runs them.

    python examples/sync_script.py worker         # terminal 1, Ctrl-C to stop
    python examples/sync_script.py defer 1 2 3    # terminal 2

``defer`` writes one job per number in one statement, then waits for their
results and prints them; ``worker`` runs a worker until Ctrl-C (or SIGTERM),
on Trio. The same worker runs from the command line:
``procrastinate-anyio --app examples.sync_script.app worker``.

It uses the database of ``PA_DSN`` (default: ``procrastinate_anyio_demo`` on
the local server, which ``examples/demo.py`` creates) and applies the schema.
"""

from __future__ import annotations

import argparse
import logging
import os
import time

import procrastinate_anyio as pa

DSN = os.environ.get(
    "PA_DSN", "postgresql://postgres@127.0.0.1:5432/procrastinate_anyio_demo"
)

app = pa.App(connector=pa.PsycopgConnector(DSN))


@app.task(queue="scripts", name="scripts.slow_double")
def slow_double(n: int) -> int:
    # A sync task: the worker runs it in a thread.
    time.sleep(0.01)
    return 2 * n


def defer(numbers: list[int]) -> None:
    with app.open():
        app.schema_manager.apply_schema()  # idempotent
        ids = slow_double.batch_defer(*({"n": n} for n in numbers))
        print(f"deferred jobs {ids}", flush=True)
        for job_id in ids:
            job = app.job_manager.wait_for_job(job_id, timeout=30)
            print(f"{job.call_string()} -> {job.status.value}: {job.result}")


def worker() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    with app.open():
        app.schema_manager.apply_schema()
    # Until Ctrl-C or SIGTERM: running jobs get shutdown_graceful_timeout.
    app.run_worker_sync(backend="trio", queues=["scripts"], concurrency=4)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("worker", help="run a worker until Ctrl-C")
    defer_parser = commands.add_parser("defer", help="defer jobs, print results")
    defer_parser.add_argument("numbers", type=int, nargs="+")
    args = parser.parse_args()
    if args.command == "worker":
        worker()
    else:
        defer(args.numbers)
