"""A Starlette application on Trio, served by hypercorn, with a worker in a
lifespan of its own.

    procrastinate-anyio --app examples.starlette_trio_app.app schema --apply
    hypercorn --worker-class trio examples.starlette_trio_app:web

then ``curl localhost:8000/report`` defers a job and answers with its result.
Starlette runs on any AnyIO backend, so the application, its views and the
worker all run on Trio here. The lifespan is the application's own:
:func:`~procrastinate_anyio.contrib.asgi.running_worker` is one more block in
it.

It uses the database of ``PA_DSN`` (default: ``procrastinate_anyio_demo`` on
the local server, which ``examples/demo.py`` creates).
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

import sniffio
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

import procrastinate_anyio as pa
from procrastinate_anyio.contrib.asgi import running_worker

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request

DSN = os.environ.get(
    "PA_DSN", "postgresql://postgres@127.0.0.1:5432/procrastinate_anyio_demo"
)

app = pa.App(connector=pa.PsycopgConnector(DSN))


@app.task(queue="reports", name="reports.build", pass_context=True)
async def build_report(context: pa.JobContext, title: str) -> dict[str, str]:
    return {
        "title": title,
        "worker": context.worker_name,
        "event_loop": sniffio.current_async_library(),
    }


async def report(request: Request) -> JSONResponse:
    title = request.query_params.get("title", "Monthly report")
    job_id = await build_report.defer_async(title=title)
    job = await app.job_manager.wait_for_job_async(job_id, timeout=10)
    return JSONResponse(
        {
            "job": job_id,
            "status": job.status.value,
            "result": job.result,
            "view_event_loop": sniffio.current_async_library(),
        }
    )


@contextlib.asynccontextmanager
async def lifespan(web: Starlette) -> AsyncIterator[None]:
    # Whatever else the application sets up goes here too.
    async with running_worker(app, queues=["reports"], concurrency=10) as worker:
        web.state.worker = worker  # e.g. for a health view: worker.statistics()
        yield


web = Starlette(routes=[Route("/report", report)], lifespan=lifespan)
