"""Job semantics end to end: App, worker and job manager on a real
PostgreSQL, on asyncio and trio (the rules themselves are checked on both
connectors in ``tests/driver/test_semantics_*.py``).

Jobs tell the test where they are through events. Where a test proves that a
notification did the work, the polling intervals are far beyond the hang
guard; no assertion depends on how long anything takes.
"""

from __future__ import annotations

import datetime
import functools
import threading
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import psycopg
import pytest

import procrastinate_anyio as pa
from procrastinate_anyio import (
    JobContext,
    RetryDecision,
    RetryStrategy,
    Status,
    _job_manager,
)
from procrastinate_anyio.connectors import FetchParams
from procrastinate_anyio.connectors.postgres import AnyioConnection, connect
from procrastinate_anyio.worker._periodic_deferrer import PeriodicDeferrer
from procrastinate_anyio.worker._rescuer import Rescuer
from tests.support import PG_HANG_GUARD_SECONDS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from procrastinate_anyio.worker._worker import Worker

pytestmark = pytest.mark.anyio

NEVER_SECONDS = 1000  # a polling interval that never elapses during a test


@pytest.fixture
def app(pg_connector: pa.PsycopgConnector) -> pa.App:
    return pa.App(
        connector=pg_connector, worker_defaults={"install_signal_handlers": False}
    )


async def get_job(app: pa.App, job_id: int) -> pa.Job:
    job = await app.job_manager.get_job_async(job_id)
    assert job is not None
    return job


async def execute(dsn: str, query: str, *params: Any) -> None:
    async with await connect(dsn) as conn:
        await conn.execute(query, params or None)


async def run_one_shot(app: pa.App, **options: Any) -> None:
    with anyio.fail_after(PG_HANG_GUARD_SECONDS):
        await app.run_worker(wait=False, **options)


@asynccontextmanager
async def running_worker(app: pa.App, **options: Any) -> AsyncIterator[Worker]:
    """A worker in the background, stopped gracefully when the block ends."""
    with anyio.fail_after(PG_HANG_GUARD_SECONDS):
        async with anyio.create_task_group() as tg:
            worker = await tg.start(functools.partial(app.run_worker, **options))
            yield worker
            worker.stop()


class MoveOnce(pa.BaseRetryStrategy):
    """Retries once at once, with another priority, queue and lock."""

    def get_retry_decision(self, *, exception: BaseException, job: pa.Job) -> Any:
        if job.attempts >= 1:
            return None
        return RetryDecision(priority=7, queue="retried", lock="R")


RETRY_CASES: dict[str, tuple[Any, int, Status, int, str]] = {
    # task name: (retry, the attempt that succeeds, expected status, attempts, queue)
    "int": (2, 99, Status.FAILED, 3, "default"),
    "strategy": (RetryStrategy(max_attempts=3), 3, Status.SUCCEEDED, 4, "default"),
    "other-exception": (
        RetryStrategy(max_attempts=5, retry_exceptions=[KeyError]),
        99,
        Status.FAILED,
        1,
        "default",
    ),
    "custom": (MoveOnce(), 1, Status.SUCCEEDED, 2, "retried"),
}


async def test_retry_strategies(app: pa.App) -> None:
    """A failing job runs again as its retry strategy decides, where it decides."""
    for name, (retry, succeed_at, *_) in RETRY_CASES.items():

        async def flaky(context: JobContext, succeed_at: int = succeed_at) -> str:
            if context.job.attempts < succeed_at:
                raise ValueError(f"attempt {context.job.attempts}")
            return "ok"

        app.task(name=name, retry=retry, pass_context=True)(flaky)
        await app.configure_task(name).defer_async()

    await run_one_shot(app)

    for job in await app.job_manager.list_jobs_async():
        expected = RETRY_CASES[job.task_name][2:]
        assert (job.status, job.attempts, job.queue) == expected, job.task_name
        if job.task_name == "custom":
            assert (job.priority, job.lock) == (7, "R")


async def test_retry_waits_without_polling(app: pa.App) -> None:
    """A retry delayed by the strategy runs when due: the worker wakes for it."""
    done = anyio.Event()

    @app.task(retry=RetryStrategy(max_attempts=2, wait=0.2), pass_context=True)
    async def once_more(context: JobContext) -> None:
        if context.job.attempts == 0:
            raise ValueError("first")
        done.set()

    await once_more.defer_async()
    async with running_worker(app, fetch_job_polling_interval=NEVER_SECONDS):
        await done.wait()


async def test_manual_retry(app: pa.App) -> None:
    """A failed job retried by hand runs again; other jobs raise JobNotFound;
    a taken queueing lock raises AlreadyEnqueued."""
    outcomes = ["fail", "ok", "fail"]

    @app.task(queueing_lock="single")
    async def work() -> None:
        if outcomes.pop(0) == "fail":
            raise ValueError("no")

    job_id = await work.defer_async()
    await run_one_shot(app)
    await app.job_manager.retry_job_by_id_async(job_id)
    await run_one_shot(app)
    assert (await get_job(app, job_id)).status is Status.SUCCEEDED
    with pytest.raises(pa.JobNotFound):
        await app.job_manager.retry_job_by_id_async(job_id)

    other = await work.defer_async()
    await run_one_shot(app)
    await work.defer_async()
    with app.open(), pytest.raises(pa.AlreadyEnqueued):
        app.job_manager.retry_job_by_id(other)
    assert (await get_job(app, other)).status is Status.FAILED


async def test_abort_is_never_retried(app: pa.App) -> None:
    """A sync job aborted on request (through NOTIFY) ends aborted despite retry=True."""
    started = threading.Event()

    @app.task(retry=True, pass_context=True)
    def polling(context: JobContext) -> None:
        started.set()
        while not context.should_abort():
            time.sleep(0.001)  # the task's own polling, as users write it

    job_id = await polling.defer_async()
    async with running_worker(app, abort_job_polling_interval=NEVER_SECONDS):
        await anyio.to_thread.run_sync(started.wait)
        assert await app.job_manager.cancel_job_by_id_async(job_id, abort=True)
        job = await app.job_manager.wait_for_job_async(job_id)
    assert (job.status, job.attempts) == (Status.ABORTED, 1)


async def test_cancel(app: pa.App) -> None:
    """cancel_job_by_id cancels or deletes a waiting job, and says False otherwise."""

    @app.task
    async def work() -> None: ...

    kept, deleted = await work.defer_async(), await work.defer_async()
    manager = app.job_manager
    assert await manager.cancel_job_by_id_async(kept)
    assert await manager.cancel_job_by_id_async(deleted, delete_job=True)
    assert not await manager.cancel_job_by_id_async(kept)
    assert (await get_job(app, kept)).status is Status.CANCELLED
    assert await manager.get_job_async(deleted) is None


async def test_schedule(app: pa.App) -> None:
    """A naive schedule_at is refused; a job scheduled 1 s ahead (on a lock)
    does not start before its time, and the worker wakes up for it."""
    started_at: list[datetime.datetime] = []

    @app.task(lock="L")
    async def later() -> None:
        started_at.append(datetime.datetime.now(datetime.timezone.utc))

    with pytest.raises(ValueError, match="timezone-aware"):
        later.configure(schedule_at=datetime.datetime(2030, 1, 1))
    job_id = await later.configure(schedule_in={"seconds": 1}).defer_async()
    async with running_worker(app, fetch_job_polling_interval=NEVER_SECONDS):
        job = await app.job_manager.wait_for_job_async(job_id)
    assert job.status is Status.SUCCEEDED
    assert job.scheduled_at is not None
    assert started_at[0] >= job.scheduled_at


async def test_priorities(app: pa.App) -> None:
    """Higher priority first, then first deferred first."""
    ran: list[int] = []

    @app.task
    async def work(n: int) -> None:
        ran.append(n)

    for n, priority in enumerate([0, 5, -1, 5, 9]):
        await work.configure(priority=priority).defer_async(n=n)
    await run_one_shot(app)

    assert ran == [4, 1, 3, 0, 2]


async def test_busy_lock_does_not_block_others(app: pa.App) -> None:
    """With many jobs behind a doing lock, an unrelated job still runs."""
    holding, release, free_ran = anyio.Event(), anyio.Event(), anyio.Event()

    @app.task(lock="L")
    async def locked(n: int) -> None:
        holding.set()
        await release.wait()

    @app.task
    async def free() -> None:
        free_ran.set()

    await locked.batch_defer_async(*({"n": n} for n in range(200)))
    async with running_worker(app, concurrency=2):
        await holding.wait()
        await free.defer_async()
        await free_ran.wait()
        (lock,) = await app.job_manager.list_locks_async()
        assert (lock.doing, lock.todo) == (1, 199)
        release.set()
    counts = await app.job_manager.list_locks_async()
    assert [(g.name, g.doing, g.succeeded + g.todo) for g in counts] == [("L", 0, 200)]


async def test_queueing_lock_batch_is_all_or_nothing(app: pa.App) -> None:
    """A batch with a taken queueing lock raises AlreadyEnqueued and writes nothing."""

    @app.task
    async def work(n: int) -> None: ...

    await work.configure(queueing_lock="Q").defer_async(n=0)
    with pytest.raises(pa.AlreadyEnqueued):
        await work.configure(queueing_lock="Q").defer_async(n=1)
    with pytest.raises(pa.AlreadyEnqueued):
        await work.configure(queueing_lock="Q").batch_defer_async({"n": 2}, {"n": 3})
    assert len(await app.job_manager.list_jobs_async()) == 1


async def test_periodic_two_workers_same_database(app: pa.App, pg_dsn: str) -> None:
    """Two apps on one database (two workers) defer each due tick once."""

    @app.periodic(cron="* * * * *")
    @app.task(name="tick")
    async def tick(timestamp: int) -> None: ...

    other = app.with_connector(pa.PsycopgConnector(pg_dsn))
    now = 1_900_000_020.0 + 30  # half a minute after a tick
    async with other.open_async(), anyio.create_task_group() as tg:
        for deferrer_app in (app, other, app, other):
            tg.start_soon(
                PeriodicDeferrer(
                    deferrer_app.connector, deferrer_app.periodic_tasks, max_delay=300
                ).run_once,
                now,
            )

    jobs = await app.job_manager.list_jobs_async(task="tick")
    stamps = sorted(job.task_kwargs["timestamp"] for job in jobs)
    assert stamps == [1_900_000_020 - 60 * i for i in range(4, -1, -1)]


async def test_maintenance_leader(app: pa.App, pg_dsn: str) -> None:
    """A dead worker's job comes back through one maintenance pass at a time:
    while another transaction holds the maintenance lock, a pass does nothing."""

    @app.task(retry=1)
    async def work() -> None: ...

    job_id = await work.defer_async()
    dead = await app.connector.worker_register("dead", None)
    await app.connector.job_fetch_many(
        FetchParams(worker_id=dead, queues=None, limit=1)
    )
    await execute(
        pg_dsn, "UPDATE pa_workers SET last_heartbeat = now() - interval '1 hour'"
    )
    maintenance = Rescuer(app.connector, stalled_worker_timeout=30, interval=1)

    async with await connect(pg_dsn) as other, other.transaction():
        await other.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('pa_maintenance', 0))"
        )
        result = await maintenance.run_once()
        assert result is not None
        assert not result.leader
        assert (await get_job(app, job_id)).status is Status.DOING

    result = await maintenance.run_once()
    assert result is not None
    assert result.leader
    assert result.pruned_workers == 1
    assert (await get_job(app, job_id)).status is Status.TODO


async def test_wait_for_job(app: pa.App, monkeypatch) -> None:
    """wait_for_job_async returns the finished job, woken by NOTIFY; sync
    wait_for_job too; an unknown job raises JobNotFound, a slow one TimeoutError."""
    monkeypatch.setattr(_job_manager, "WAIT_POLL_INTERVAL_SECONDS", NEVER_SECONDS)
    release = anyio.Event()

    @app.task
    async def gated(fail: bool) -> dict[str, int]:
        await release.wait()
        if fail:
            raise KeyError("missing")
        return {"answer": 42}

    async def release_when_waiting() -> None:
        await anyio.wait_all_tasks_blocked()
        release.set()

    ok, ko = await gated.defer_async(fail=False), await gated.defer_async(fail=True)
    with pytest.raises(TimeoutError):
        await app.job_manager.wait_for_job_async(ok, timeout=0.1)
    async with running_worker(app, concurrency=2):
        async with anyio.create_task_group() as tg:
            tg.start_soon(release_when_waiting)
            job = await app.job_manager.wait_for_job_async(ok, timeout=NEVER_SECONDS)
        with app.open():
            failed = await anyio.to_thread.run_sync(app.job_manager.wait_for_job, ko)
    assert (job.status, job.result) == (Status.SUCCEEDED, {"answer": 42})
    assert failed.error is not None
    assert (failed.error.type, failed.error.message) == ("KeyError", "'missing'")
    assert "KeyError" in (failed.error.traceback or "")
    with pytest.raises(pa.JobNotFound):
        await app.job_manager.wait_for_job_async(123456)


LOCKS = [pytest.param(None, id="no-lock"), pytest.param("L", id="lock")]


@pytest.mark.parametrize("lock", LOCKS)
async def test_transactional_defer_async(
    app: pa.App, pg_dsn: str, lock: str | None
) -> None:
    """A job deferred first thing in the caller's transaction exists only if
    that transaction commits; at commit, a listening worker wakes up."""
    ran = anyio.Event()

    @app.task(lock=lock)
    async def notify(n: int) -> None:
        ran.set()

    async with running_worker(app, fetch_job_polling_interval=NEVER_SECONDS):
        async with await AnyioConnection.connect(pg_dsn) as conn:
            await notify.configure(connection=conn).defer_async(n=1)
            await conn.rollback()
            assert await app.job_manager.list_jobs_async() == []
            job_id = await notify.configure(connection=conn).defer_async(n=2)
            await conn.commit()
        await ran.wait()
    assert [j.id for j in await app.job_manager.list_jobs_async()] == [job_id]


@pytest.mark.parametrize("lock", LOCKS)
async def test_transactional_defer_sync(
    app: pa.App, pg_dsn: str, lock: str | None
) -> None:
    """The sync twin, on a psycopg connection (as Django's): rolled back, no
    job; committed, one; inside a transaction block too."""

    @app.task(lock=lock)
    def notify(n: int) -> None: ...

    with psycopg.connect(pg_dsn) as conn:
        notify.configure(connection=conn).defer(n=1)
        conn.rollback()
        with conn.transaction(force_rollback=True):
            notify.configure(connection=conn).defer(n=2)
        job_id = notify.configure(connection=conn).defer(n=3)
        conn.commit()
    assert [j.id for j in await app.job_manager.list_jobs_async()] == [job_id]


async def test_transactional_cancel(app: pa.App, pg_dsn: str) -> None:
    """cancel_job_by_id[_async] with Procrastinate's ``connection``: rolled
    back, the job still waits; committed, it is cancelled."""

    @app.task
    def work() -> None: ...

    first, second = await work.batch_defer_async({}, {})
    async with await AnyioConnection.connect(pg_dsn) as conn:
        assert await app.job_manager.cancel_job_by_id_async(first, connection=conn)
        await conn.rollback()
    with psycopg.connect(pg_dsn) as sync_conn:
        assert app.job_manager.cancel_job_by_id(second, False, True, sync_conn)
        sync_conn.rollback()
    todo = await app.job_manager.list_jobs_async(status="todo")
    assert [j.id for j in todo] == [first, second]
    async with await AnyioConnection.connect(pg_dsn) as conn:
        assert await app.job_manager.cancel_job_by_id_async(first, connection=conn)
    with psycopg.connect(pg_dsn) as sync_conn:
        assert app.job_manager.cancel_job_by_id(
            second, delete_job=True, connection=sync_conn
        )
    assert [(j.id, j.status) for j in await app.job_manager.list_jobs_async()] == [
        (first, pa.Status.CANCELLED)
    ]


async def test_retention(app: pa.App, pg_dsn: str) -> None:
    """builtin:remove_old_jobs deletes old finished jobs as asked; a worker
    with delete_jobs="successful" keeps only its failures."""

    @app.task
    async def work(fail: bool) -> None:
        if fail:
            raise ValueError("no")

    await work.batch_defer_async({"fail": False}, {"fail": True})
    await run_one_shot(app)
    await execute(pg_dsn, "UPDATE pa_jobs SET finished_at = now() - interval '3 hours'")
    cleanup = await app.configure_task("builtin:remove_old_jobs").defer_async(
        max_hours=2, remove_failed=True
    )
    await run_one_shot(app)
    assert [(j.id, j.result) for j in await app.job_manager.list_jobs_async()] == [
        (cleanup, 2)
    ]

    _ok, ko = await work.batch_defer_async({"fail": False}, {"fail": True})
    await run_one_shot(app, delete_jobs="successful")
    assert [j.id for j in await app.job_manager.list_jobs_async()] == [cleanup, ko]


async def test_inspection_sync_and_async(app: pa.App) -> None:
    """list_jobs, list_queues, list_tasks and list_locks agree, sync and async."""

    @app.task(queue="a", lock="L")
    async def first() -> None: ...

    @app.task(queue="b")
    async def second() -> None: ...

    await first.defer_async()
    await second.batch_defer_async({}, {})
    manager = app.job_manager
    calls: list[tuple[str, dict[str, Any]]] = [
        ("list_jobs", {"queue": "b", "status": "todo"}),
        ("list_queues", {}),
        ("list_tasks", {"queue": "a"}),
        ("list_locks", {"status": Status.TODO}),
    ]
    with app.open():
        for method, filters in calls:
            result = getattr(manager, method)(**filters)
            assert result == await getattr(manager, f"{method}_async")(**filters)
            assert result
        assert [(g.name, g.todo) for g in manager.list_queues()] == [("a", 1), ("b", 2)]


async def test_long_queue_name(app: pa.App) -> None:
    """A 200-character queue works end to end, the worker woken by NOTIFY."""
    queue = "q" * 200
    done = anyio.Event()

    @app.task(queue=queue)
    async def ping() -> None:
        done.set()

    async with running_worker(
        app, queues=[queue], fetch_job_polling_interval=NEVER_SECONDS
    ):
        await anyio.wait_all_tasks_blocked()
        await ping.defer_async()
        await done.wait()
