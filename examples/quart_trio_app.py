"""A Quart application on Trio (Quart-Trio), served by hypercorn, with a
worker in the application's nursery.

    procrastinate-anyio --app examples.quart_trio_app.app schema --apply
    hypercorn --worker-class trio examples.quart_trio_app:web

then ``curl localhost:8000/report`` defers a job and answers with its result.

Quart-Trio gives the application a nursery for the time it serves
(``web.nursery``). The worker starts in it before the first request
(``nursery.start``: serving begins once the worker is registered and
listening), and at shutdown Quart-Trio cancels that nursery: cancelling a
worker's scope is a graceful stop (running jobs get
``shutdown_graceful_timeout``, outcomes are written, the worker unregisters).
A worker that fails takes the nursery, and so the server's lifespan, down
with it.

It uses the database of ``PA_DSN`` (default: ``procrastinate_anyio_demo`` on
the local server, which ``examples/demo.py`` creates).
"""

from __future__ import annotations

import functools
import os

import sniffio
from quart import request
from quart_trio import QuartTrio

import procrastinate_anyio as pa

DSN = os.environ.get(
    "PA_DSN", "postgresql://postgres@127.0.0.1:5432/procrastinate_anyio_demo"
)

app = pa.App(connector=pa.PsycopgConnector(DSN))
web = QuartTrio(__name__)
# Longer than the worker's shutdown_graceful_timeout (30 s by default), so
# that Quart-Trio's own deadline does not cut the graceful stop short.
web.config["BACKGROUND_TASK_SHUTDOWN_TIMEOUT"] = 40


@app.task(queue="reports", name="reports.build", pass_context=True)
async def build_report(context: pa.JobContext, title: str) -> dict[str, str]:
    return {
        "title": title,
        "worker": context.worker_name,
        "event_loop": sniffio.current_async_library(),
    }


@web.before_serving
async def start_worker() -> None:
    await web.nursery.start(
        functools.partial(
            app.run_worker,
            queues=["reports"],
            concurrency=10,
            install_signal_handlers=False,  # the server handles signals
        )
    )


@web.route("/report")
async def report() -> dict[str, object]:
    title = request.args.get("title", "Monthly report")
    job_id = await build_report.defer_async(title=title)
    job = await app.job_manager.wait_for_job_async(job_id, timeout=10)
    return {
        "job": job_id,
        "status": job.status.value,
        "result": job.result,
        "view_event_loop": sniffio.current_async_library(),
    }
