"""A FastAPI application whose lifespan runs a worker.

    procrastinate-anyio --app examples.fastapi_app.app schema --apply
    uvicorn examples.fastapi_app:web --port 8000

then ``curl 'localhost:8000/add?a=1&b=2'`` defers a job and answers with its
result, ``curl -X POST 'localhost:8000/squares?count=100'`` defers a batch
of jobs in one statement. The worker starts with the application and stops
with it (Ctrl-C): running jobs get ``shutdown_graceful_timeout`` to finish.

It uses the database of ``PA_DSN`` (default: ``procrastinate_anyio_demo`` on
the local server, which ``examples/demo.py`` creates).
"""

from __future__ import annotations

import os

import anyio
from fastapi import FastAPI

import procrastinate_anyio as pa
from procrastinate_anyio.contrib.asgi import lifespan

DSN = os.environ.get(
    "PA_DSN", "postgresql://postgres@127.0.0.1:5432/procrastinate_anyio_demo"
)

app = pa.App(connector=pa.PsycopgConnector(DSN))


@app.task(queue="web", name="web.add")
async def add(a: int, b: int) -> int:
    return a + b


@app.task(queue="web", name="web.square")
async def square(n: int) -> int:
    await anyio.sleep(0.01)  # pretend to do some I/O
    return n * n


web = FastAPI(lifespan=lifespan(app, queues=["web"], concurrency=20))


@web.get("/add")
async def add_view(a: int, b: int) -> dict[str, object]:
    """Defer a job and wait for its result (a worker of this process runs it)."""
    job_id = await add.defer_async(a=a, b=b)
    job = await app.job_manager.wait_for_job_async(job_id, timeout=10)
    return {"job": job_id, "status": job.status.value, "result": job.result}


@web.post("/squares")
async def squares_view(count: int) -> dict[str, object]:
    """Defer ``count`` jobs at once, all or none; answer with their ids."""
    ids = await square.batch_defer_async(*({"n": n} for n in range(count)))
    return {"jobs": ids}


@web.get("/jobs/{job_id}")
async def job_view(job_id: int) -> dict[str, object]:
    """A job's status and result."""
    job = await app.job_manager.get_job_async(job_id)
    if job is None:
        return {"job": job_id, "status": None}
    return {"job": job_id, "status": job.status.value, "result": job.result}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(web, host="127.0.0.1", port=8000)
