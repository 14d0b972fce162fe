"""A Trio program that runs a worker next to its own work.

    python examples/trio_app.py [--jobs N]

The worker is one more child of the program's nursery: ``nursery.start``
returns once it is registered and listening. The program defers jobs, waits
for their results, then keeps running until Ctrl-C (or SIGTERM), which
cancels the nursery: the worker stops gracefully (running jobs get
``shutdown_graceful_timeout`` to finish) and unregisters.

It uses the database of ``PA_DSN`` (default: ``procrastinate_anyio_demo`` on
the local server, which ``examples/demo.py`` creates) and applies the schema.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal

import trio

import procrastinate_anyio as pa

DSN = os.environ.get(
    "PA_DSN", "postgresql://postgres@127.0.0.1:5432/procrastinate_anyio_demo"
)

app = pa.App(connector=pa.PsycopgConnector(DSN))


@app.task(queue="trio_app", name="trio_app.square")
async def square(n: int) -> int:
    await trio.sleep(0.01)  # pretend to do some I/O
    return n * n


async def own_work(jobs: int) -> None:
    """What the program does besides running the worker: here, defer jobs
    and print their results as they come."""
    ids = await square.batch_defer_async(*({"n": n} for n in range(jobs)))
    total = 0
    for job_id in ids:
        job = await app.job_manager.wait_for_job_async(job_id, timeout=30)
        total += job.result
    print(f"{jobs} jobs done, sum of squares {total}; Ctrl-C to stop", flush=True)


async def main(jobs: int) -> None:
    async with app.open_async():
        await app.schema_manager.apply_schema_async()  # idempotent
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                worker = await nursery.start(
                    functools.partial(
                        app.run_worker,
                        queues=["trio_app"],
                        concurrency=10,
                        # The program owns the signals: it stops the nursery.
                        install_signal_handlers=False,
                    )
                )
                print(f"worker {worker.options.name} ready", flush=True)
                nursery.start_soon(own_work, jobs)
                async for signum in signals:
                    print(f"got {signal.Signals(signum).name}, stopping", flush=True)
                    nursery.cancel_scope.cancel()  # a graceful stop of the worker
                    break
    print(f"stopped: {worker.statistics().jobs_done['succeeded']} jobs succeeded")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    trio.run(main, parser.parse_args().jobs)
