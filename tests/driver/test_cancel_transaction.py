"""Conformance: ``job_cancel`` on a caller's connection joins the caller's
transaction (Procrastinate's ``cancel_job_by_id(..., connection=...)``).

The in-memory connector accepts the connection and ignores it (it has no
transaction to join): committed, both connectors agree. Rolled back is a
PostgreSQL-only rule: those tests run on PostgreSQL, async and sync.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from procrastinate_anyio import Status
from procrastinate_anyio.connectors import CancelParams
from procrastinate_anyio.connectors.postgres import AnyioConnection

from .conftest import JobFactory, SyncJobFactory, _postgres_sync_driver

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator
    from contextlib import AbstractAsyncContextManager, AbstractContextManager

    from procrastinate_anyio import PsycopgConnector
    from procrastinate_anyio.connectors import AsyncConnector

    from .conftest import Driver, SyncDriver


@pytest.fixture
def callers_transaction(
    driver: Driver, request: pytest.FixtureRequest
) -> Callable[[], AbstractAsyncContextManager[Any]]:
    """Opens a caller's connection in a transaction that commits at exit:
    an AnyioConnection on PostgreSQL, a stand-in object in memory."""

    @contextlib.asynccontextmanager
    async def memory() -> AsyncIterator[object]:
        yield object()

    @contextlib.asynccontextmanager
    async def postgres() -> AsyncIterator[AnyioConnection[Any]]:
        dsn: str = request.getfixturevalue("pg_dsn")
        async with (
            await AnyioConnection.connect(dsn) as conn,
            conn.transaction(),
        ):
            yield conn

    return memory if driver.name == "memory" else postgres


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("abort", "delete_job"),
    [
        pytest.param(False, False, id="plain"),
        pytest.param(True, False, id="abort"),
        pytest.param(False, True, id="delete"),
    ],
)
async def test_cancel_todo_committed(
    connector: AsyncConnector,
    jobs: JobFactory,
    callers_transaction: Callable[[], AbstractAsyncContextManager[Any]],
    abort: bool,
    delete_job: bool,
) -> None:
    """Cancelled in the caller's committed transaction: as without one."""
    job_id = await jobs.defer()
    params = CancelParams(job_id=job_id, abort=abort, delete_job=delete_job)

    async with callers_transaction() as conn:
        assert await connector.job_cancel(params, connection=conn) is True

    job = await connector.job_get(job_id)
    if delete_job:
        assert job is None
    else:
        assert job is not None
        assert job.status is Status.CANCELLED


@pytest.mark.anyio
async def test_abort_doing_committed(
    connector: AsyncConnector,
    jobs: JobFactory,
    callers_transaction: Callable[[], AbstractAsyncContextManager[Any]],
) -> None:
    """An abort asked in the caller's committed transaction is seen by the worker."""
    job_id = await jobs.defer()
    assert await jobs.fetch() == [job_id]

    async with callers_transaction() as conn:
        params = CancelParams(job_id=job_id, abort=True)
        assert await connector.job_cancel(params, connection=conn) is True

    assert await connector.job_abort_requested_many([job_id]) == [job_id]


@pytest.mark.anyio
async def test_cancel_refused_in_transaction(
    connector: AsyncConnector,
    jobs: JobFactory,
    callers_transaction: Callable[[], AbstractAsyncContextManager[Any]],
) -> None:
    """On the caller's connection, False means the same: finished, unknown,
    or running without ``abort``."""
    done = await jobs.defer()
    await jobs.run(done)
    running = await jobs.defer()
    assert await jobs.fetch() == [running]

    async with callers_transaction() as conn:
        for params in (
            CancelParams(job_id=done, abort=True),
            CancelParams(job_id=running),
            CancelParams(job_id=987_654),
        ):
            assert await connector.job_cancel(params, connection=conn) is False

    assert await jobs.statuses(done, running) == [Status.SUCCEEDED, Status.DOING]


@pytest.mark.anyio
async def test_cancel_locked_job_committed(
    connector: AsyncConnector,
    jobs: JobFactory,
    callers_transaction: Callable[[], AbstractAsyncContextManager[Any]],
) -> None:
    """Cancelling the active job of a lock in the caller's transaction lets
    the lock's next job run once it commits."""
    first = await jobs.defer(lock="L")
    second = await jobs.defer(lock="L")

    async with callers_transaction() as conn:
        assert await connector.job_cancel(CancelParams(job_id=first), connection=conn)

    assert await jobs.fetch() == [second]


# ------------------------------------------------ PostgreSQL: rolled back


@pytest.mark.anyio
@pytest.mark.parametrize(
    "params",
    [
        pytest.param({}, id="plain"),
        pytest.param({"delete_job": True}, id="delete"),
        pytest.param({"abort": True}, id="abort"),
    ],
)
async def test_rolled_back_not_cancelled_async(
    pg_connector: PsycopgConnector, pg_dsn: str, params: dict[str, bool]
) -> None:
    """Rolled back, the cancel never happened: the job is still todo, its
    lock still held and its queueing lock still taken."""
    jobs = JobFactory(pg_connector)
    job_id = await jobs.defer(lock="L", queueing_lock="QL")
    behind = await jobs.defer(lock="L")

    async with await AnyioConnection.connect(pg_dsn) as conn:
        cancel = CancelParams(job_id=job_id, **params)
        assert await pg_connector.job_cancel(cancel, connection=conn) is True
        await conn.rollback()
        # In a transaction block too (a savepoint of the caller's).
        async with conn.transaction(force_rollback=True):
            assert await pg_connector.job_cancel(cancel, connection=conn)

    assert await jobs.statuses(job_id, behind) == [Status.TODO, Status.TODO]
    assert await jobs.fetch() == [job_id]


@pytest.mark.anyio
async def test_rolled_back_abort_not_requested_async(
    pg_connector: PsycopgConnector, pg_dsn: str
) -> None:
    """A rolled-back abort request is not seen by the worker."""
    jobs = JobFactory(pg_connector)
    job_id = await jobs.defer()
    assert await jobs.fetch() == [job_id]

    async with await AnyioConnection.connect(pg_dsn) as conn:
        params = CancelParams(job_id=job_id, abort=True)
        assert await pg_connector.job_cancel(params, connection=conn) is True
        await conn.rollback()

    assert await pg_connector.job_abort_requested_many([job_id]) == []
    assert not (await jobs.get(job_id)).abort_requested


# ------------------------------------------------------------ sync protocol


@pytest.fixture
def sync_callers_transaction(
    sync_driver: SyncDriver,
) -> Callable[[], AbstractContextManager[Any]]:
    """The sync twin of ``callers_transaction``: a psycopg connection."""

    @contextlib.contextmanager
    def memory() -> Iterator[object]:
        yield object()

    @contextlib.contextmanager
    def postgres() -> Iterator[psycopg.Connection[Any]]:
        dsn: str = sync_driver.connector.conninfo  # type: ignore[attr-defined]  # SyncPsycopgConnector's
        with psycopg.connect(dsn) as conn:
            yield conn  # psycopg commits at exit

    return memory if sync_driver.name == "memory" else postgres


@pytest.mark.parametrize(
    ("abort", "delete_job"),
    [
        pytest.param(False, False, id="plain"),
        pytest.param(True, False, id="abort"),
        pytest.param(False, True, id="delete"),
    ],
)
def test_sync_cancel_committed(
    sync_driver: SyncDriver,
    sync_jobs: SyncJobFactory,
    sync_callers_transaction: Callable[[], AbstractContextManager[Any]],
    abort: bool,
    delete_job: bool,
) -> None:
    """The sync protocol: cancelled in the caller's committed transaction."""
    job_id = sync_jobs.defer()
    params = CancelParams(job_id=job_id, abort=abort, delete_job=delete_job)

    with sync_callers_transaction() as conn:
        assert sync_driver.connector.job_cancel(params, connection=conn) is True

    job = sync_driver.connector.job_get(job_id)
    assert (job is None) if delete_job else (job and job.status is Status.CANCELLED)


def test_sync_abort_and_refusals_committed(
    sync_driver: SyncDriver,
    sync_jobs: SyncJobFactory,
    sync_callers_transaction: Callable[[], AbstractContextManager[Any]],
) -> None:
    """The sync protocol: an abort of a running job; nothing for a finished one."""
    done = sync_jobs.defer()
    sync_jobs.run(done)
    running = sync_jobs.defer()
    assert sync_jobs.fetch() == [running]
    connector = sync_driver.connector

    with sync_callers_transaction() as conn:
        assert connector.job_cancel(CancelParams(job_id=done), connection=conn) is False
        assert (
            connector.job_cancel(CancelParams(job_id=running), connection=conn) is False
        )
        params = CancelParams(job_id=running, abort=True)
        assert connector.job_cancel(params, connection=conn) is True

    assert sync_jobs.get(running).abort_requested


@pytest.mark.parametrize("delete_job", [False, True], ids=["plain", "delete"])
def test_rolled_back_not_cancelled_sync(pg_dsn: str, delete_job: bool) -> None:
    """Rolled back on a sync psycopg connection (idle, or in a transaction
    block), the job is still todo and its queueing lock still taken."""
    with _postgres_sync_driver(pg_dsn) as driver:
        jobs = SyncJobFactory(driver)
        job_id = jobs.defer(queueing_lock="QL")
        params = CancelParams(job_id=job_id, delete_job=delete_job)

        with psycopg.connect(pg_dsn) as conn:
            assert driver.connector.job_cancel(params, connection=conn) is True
            conn.rollback()
            with conn.transaction(force_rollback=True):
                assert driver.connector.job_cancel(params, connection=conn) is True

        assert jobs.statuses(job_id) == [Status.TODO]
        assert jobs.get(job_id).queueing_lock == "QL"
