"""The worker against a real PostgreSQL, on asyncio and trio.

Each test gets a fresh database. Jobs report progress through events; the
polling intervals are set far beyond the hang guard where a test proves that
a notification (not polling) did the work.
"""

from __future__ import annotations

import functools
import threading
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import procrastinate_anyio as pa
from procrastinate_anyio import JobContext, Status
from procrastinate_anyio.connectors.postgres import connect
from procrastinate_anyio.worker._worker import Worker
from tests.support import PG_HANG_GUARD_SECONDS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.anyio

NEVER_SECONDS = 1000  # a polling interval that never elapses during a test


@pytest.fixture
def app(pg_connector: pa.PsycopgConnector) -> pa.App:
    # A short graceful timeout keeps the hang guard effective: the guard's
    # cancellation is itself a graceful stop.
    defaults = {"install_signal_handlers": False, "shutdown_graceful_timeout": 2}
    return pa.App(connector=pg_connector, worker_defaults=defaults)


async def get_job(app: pa.App, job_id: int) -> pa.Job:
    job = await app.job_manager.get_job_async(job_id)
    assert job is not None
    return job


async def fetch_values(dsn: str, query: str) -> list[Any]:
    """First column of each row of ``query``, on a connection of its own."""
    async with await connect(dsn) as conn:
        rows = await (await conn.execute(query)).fetchall()
    return [next(iter(row.values())) for row in rows]


@asynccontextmanager
async def running_worker(app: pa.App, **options: Any) -> AsyncIterator[Worker]:
    """A worker in the background, stopped gracefully when the block ends."""
    with anyio.fail_after(PG_HANG_GUARD_SECONDS):
        async with anyio.create_task_group() as tg:
            worker = await tg.start(functools.partial(app.run_worker, **options))
            yield worker
            worker.stop()


async def test_embedded_worker_stops_gracefully_on_cancel(app):
    """tg.start returns the Worker; cancelling the scope lets the running job end."""
    started, release = anyio.Event(), anyio.Event()

    @app.task
    async def busy() -> str:
        started.set()
        await release.wait()
        return "done"

    async def release_once_blocked() -> None:
        await anyio.wait_all_tasks_blocked()
        release.set()

    job_id = await busy.defer_async()
    with anyio.fail_after(PG_HANG_GUARD_SECONDS):
        async with (
            anyio.create_task_group() as outer,
            anyio.create_task_group() as tg,
        ):
            worker = await tg.start(
                functools.partial(app.run_worker, shutdown_graceful_timeout=10)
            )
            assert isinstance(worker, Worker)
            await started.wait()
            outer.start_soon(release_once_blocked)
            tg.cancel_scope.cancel()
    job = await get_job(app, job_id)
    assert (job.status, job.result) == (Status.SUCCEEDED, "done")


async def test_one_shot_drains_many_jobs(app):
    """A one-shot worker runs 200 jobs and stops; every one succeeded."""

    @app.task
    async def double(x: int) -> int:
        return 2 * x

    ids = await double.batch_defer_async(*({"x": i} for i in range(200)))
    with anyio.fail_after(PG_HANG_GUARD_SECONDS):
        await app.run_worker(wait=False, concurrency=20)
    jobs = await app.job_manager.list_jobs_async()
    assert [(j.id, j.status, j.result) for j in jobs] == [
        (job_id, Status.SUCCEEDED, 2 * i) for i, job_id in enumerate(ids)
    ]


async def test_concurrent_jobs_overlap(app):
    """N async jobs all start before any of them ends."""
    n = 5
    started = 0
    all_started = anyio.Event()

    @app.task
    async def overlap() -> None:
        nonlocal started
        started += 1
        if started == n:
            all_started.set()
        await all_started.wait()

    await overlap.batch_defer_async(*[{}] * n)
    with anyio.fail_after(PG_HANG_GUARD_SECONDS):
        await app.run_worker(wait=False, concurrency=n)
    jobs = await app.job_manager.list_jobs_async(status=Status.SUCCEEDED)
    assert len(jobs) == n


async def test_sync_task_runs_in_a_thread(app):
    """A sync task runs in a worker thread, not the event loop's."""

    @app.task
    def where() -> int:
        return threading.get_ident()

    job_id = await where.defer_async()
    with anyio.fail_after(PG_HANG_GUARD_SECONDS):
        await app.run_worker(wait=False)
    assert (await get_job(app, job_id)).result != threading.get_ident()


async def test_abort_async_job_through_notify(app):
    """An abort request reaches a running async job through NOTIFY."""
    started, ended = anyio.Event(), anyio.Event()

    @app.task(retry=True)
    async def forever() -> None:
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            ended.set()

    job_id = await forever.defer_async()
    async with running_worker(app, abort_job_polling_interval=NEVER_SECONDS):
        await started.wait()
        assert await app.job_manager.cancel_job_by_id_async(job_id, abort=True)
        await ended.wait()
    assert (await get_job(app, job_id)).status is Status.ABORTED


async def test_abort_sync_job_through_notify(app):
    """An abort request reaches a running sync job's should_abort() through NOTIFY."""
    started = threading.Event()

    @app.task(pass_context=True)
    def polling(context: JobContext) -> None:
        started.set()
        while not context.should_abort():
            time.sleep(0.001)  # the task's own polling, as users write it

    job_id = await polling.defer_async()
    async with running_worker(app, abort_job_polling_interval=NEVER_SECONDS):
        await anyio.to_thread.run_sync(started.wait)
        assert await app.job_manager.cancel_job_by_id_async(job_id, abort=True)
    job = await get_job(app, job_id)
    assert (job.status, job.error) == (Status.ABORTED, None)  # not a shutdown


async def test_timeout_fails_the_job(app):
    """A job past its timeout fails with a TimeoutError, stored in the database."""

    @app.task(timeout=0.05)
    async def slow() -> None:
        await anyio.sleep_forever()

    job_id = await slow.defer_async()
    with anyio.fail_after(PG_HANG_GUARD_SECONDS):
        await app.run_worker(wait=False)
    job = await get_job(app, job_id)
    assert job.status is Status.FAILED
    assert job.error is not None
    assert job.error.type == "TimeoutError"


async def test_results_and_errors_are_stored(app):
    """The result of a success and the error of a failure are in the database."""

    @app.task
    async def ok() -> dict[str, Any]:
        return {"answer": [4, 2]}

    @app.task
    async def ko() -> None:
        raise ValueError("nope")

    ok_id, ko_id = await ok.defer_async(), await ko.defer_async()
    with anyio.fail_after(PG_HANG_GUARD_SECONDS):
        await app.run_worker(wait=False)
    assert (await get_job(app, ok_id)).result == {"answer": [4, 2]}
    error = (await get_job(app, ko_id)).error
    assert error is not None
    assert (error.type, error.message) == ("ValueError", "nope")
    assert 'raise ValueError("nope")' in (error.traceback or "")


async def test_idle_worker_hears_new_jobs(app):
    """A job deferred while the worker idles starts through NOTIFY, not polling."""
    done = anyio.Event()

    @app.task
    async def ping() -> None:
        done.set()

    async with running_worker(app, fetch_job_polling_interval=NEVER_SECONDS):
        await anyio.wait_all_tasks_blocked()
        await ping.defer_async()
        await done.wait()


async def test_listener_reconnects_after_losing_its_connection(
    app, pg_connector, pg_dsn, monkeypatch
):
    """After pg_terminate_backend of the LISTEN connection, NOTIFY works again."""
    listening = [anyio.Event(), anyio.Event()]
    listen = pg_connector.listen

    async def tracking_listen(on_notification: Any, *, task_status: Any) -> None:
        """The connector's listen, setting the next event once it listens."""
        event = listening[sum(e.is_set() for e in listening)]

        class TrackedStatus:
            def started(self, value: object = None) -> None:
                event.set()
                task_status.started()

        await listen(on_notification, task_status=TrackedStatus())

    monkeypatch.setattr(pg_connector, "listen", tracking_listen)
    done = anyio.Event()

    @app.task
    async def ping() -> None:
        done.set()

    async with running_worker(app, fetch_job_polling_interval=NEVER_SECONDS) as worker:
        assert listening[0].is_set()
        (pid,) = await fetch_values(
            pg_dsn,
            "SELECT pid FROM pg_stat_activity WHERE query = 'LISTEN pa_events;'"
            " AND datname = current_database()",
        )
        await fetch_values(pg_dsn, f"SELECT pg_terminate_backend({pid}, 5000)")
        await listening[1].wait()
        assert worker.statistics().listening
        await anyio.wait_all_tasks_blocked()
        await ping.defer_async()
        await done.wait()


async def test_crashing_heartbeat_stops_the_worker_cleanly(
    app, pg_connector, pg_dsn, monkeypatch
):
    """A crashing child stops the worker: no job left doing, worker unregistered."""
    started = anyio.Event()

    @app.task
    async def forever() -> None:
        started.set()
        await anyio.sleep_forever()

    async def broken_heartbeat(worker_id: int) -> bool:
        await started.wait()
        raise RuntimeError("heartbeat broke")

    monkeypatch.setattr(pg_connector, "worker_heartbeat", broken_heartbeat)
    job_id = await forever.defer_async()
    with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="heartbeat broke")):
        with anyio.fail_after(PG_HANG_GUARD_SECONDS):
            await app.run_worker(update_heartbeat_interval=0.01)
    assert (await get_job(app, job_id)).status is Status.ABORTED
    assert await fetch_values(pg_dsn, "SELECT count(*) FROM pa_workers") == [0]
