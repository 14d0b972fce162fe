"""Procrastinate's entry points against a real PostgreSQL: the sync API
inside a worker's jobs, ``run_worker`` from sync code, and a native asyncio
cancel of the worker's task."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest

import procrastinate_anyio as pa
from procrastinate_anyio import Status
from tests.support import PG_HANG_GUARD_SECONDS

pytestmark = pytest.mark.anyio

WORKER = {"install_signal_handlers": False, "shutdown_graceful_timeout": 5}


@pytest.fixture
def app(pg_connector: pa.PsycopgConnector) -> pa.App:
    return pa.App(connector=pg_connector, worker_defaults=WORKER)


@pytest.mark.parametrize("sync_parent", [True, False], ids=["sync", "async"])
async def test_tasks_defer_with_the_sync_api(app: pa.App, sync_parent: bool) -> None:
    """A sync or an async task defers another with ``task.defer()`` inside a
    worker that only opened the async connector."""

    @app.task(name="child")
    def child(n: int) -> int:
        return n * 2

    def body() -> None:
        child.defer(n=21)

    if sync_parent:

        @app.task(name="parent")
        def parent() -> None:
            body()

    else:

        @app.task(name="parent")
        async def parent() -> None:
            body()

    await parent.defer_async()
    with anyio.fail_after(PG_HANG_GUARD_SECONDS):
        await app.run_worker_async(wait=False)

    jobs = await app.job_manager.list_jobs_async()
    assert [(j.task_name, j.status, j.result) for j in jobs] == [
        ("parent", Status.SUCCEEDED, None),
        ("child", Status.SUCCEEDED, 42),
    ]


def test_sync_run_worker(pg_dsn: str) -> None:
    """From sync code: ``with app.open():`` to defer, then ``run_worker``
    blocks until the one-shot worker is done."""
    app = pa.App(connector=pa.PsycopgConnector(conninfo=pg_dsn), worker_defaults=WORKER)

    @app.task(name="hello")
    def hello(who: str) -> str:
        return f"hello {who}"

    with app.open():
        job_id = hello.defer(who="world")
    app.run_worker(wait=False)
    with app.open():
        job = app.job_manager.get_job(job_id)

    assert job is not None
    assert (job.status, job.result) == (Status.SUCCEEDED, "hello world")


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_native_asyncio_cancel_is_graceful(app: pa.App) -> None:
    """``task.cancel()`` of ``asyncio.create_task(app.run_worker_async())``
    lets the running job finish."""
    started, release = anyio.Event(), anyio.Event()

    @app.task(name="slow")
    async def slow() -> str:
        started.set()
        await release.wait()
        return "done"

    job_id = await slow.defer_async()
    with anyio.fail_after(PG_HANG_GUARD_SECONDS):
        worker_task: asyncio.Task[Any] = asyncio.create_task(app.run_worker_async())
        await started.wait()
        worker_task.cancel()
        await anyio.wait_all_tasks_blocked()
        assert not worker_task.done()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await worker_task

    job = await app.job_manager.get_job_async(job_id)
    assert job is not None
    assert (job.status, job.result) == (Status.SUCCEEDED, "done")
