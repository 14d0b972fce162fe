"""The sync and async protocols on the same storage agree: a job written
through one reads the same through the other, on both implementations and
both event loops."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from procrastinate_anyio import Job, Status
from procrastinate_anyio.connectors import CancelParams, JobFilter, RetryParams
from tests.conftest import BACKENDS

from .conftest import JobFactory, to_defer

if TYPE_CHECKING:
    from procrastinate_anyio.connectors import AsyncConnector

    from .conftest import SyncDriver, SyncJobFactory

pytestmark = pytest.mark.parametrize("backend", BACKENDS)


def test_sync_defer_reads_the_same_async(sync_driver: SyncDriver, backend: str) -> None:
    """Jobs deferred through the sync connector read the same through the async one."""
    ids = sync_driver.connector.job_defer_many(
        [to_defer(args={"a": 1}), to_defer(queue="q", lock="L", queueing_lock="QL")]
    )

    async def read(connector: AsyncConnector) -> tuple[object, ...]:
        return (
            [await connector.job_get(job_id) for job_id in ids],
            await connector.job_list(JobFilter()),
            await connector.job_stats("queue", JobFilter()),
        )

    assert sync_driver.run_async(read, backend) == (
        [sync_driver.connector.job_get(job_id) for job_id in ids],
        sync_driver.connector.job_list(JobFilter()),
        sync_driver.connector.job_stats("queue", JobFilter()),
    )


def test_async_defer_reads_the_same_sync(sync_driver: SyncDriver, backend: str) -> None:
    """Jobs deferred through the async connector read the same through the sync one."""

    async def defer(connector: AsyncConnector) -> tuple[list[int], list[Job]]:
        ids = await connector.job_defer_many([to_defer(), to_defer(task_name="t")])
        return ids, await connector.job_list(JobFilter())

    ids, listed = sync_driver.run_async(defer, backend)

    assert sync_driver.connector.job_list(JobFilter()) == listed
    assert [job.id for job in listed] == ids


def test_ids_are_shared(sync_driver: SyncDriver, backend: str) -> None:
    """Both protocols draw ids from one sequence: no id is given twice."""
    (first,) = sync_driver.connector.job_defer_many([to_defer()])
    (second,) = sync_driver.run_async(
        lambda connector: connector.job_defer_many([to_defer()]), backend
    )
    (third,) = sync_driver.connector.job_defer_many([to_defer()])

    assert first < second < third


def test_sync_cancel_and_retry_seen_async(
    sync_driver: SyncDriver, sync_jobs: SyncJobFactory, backend: str
) -> None:
    """A job cancelled, then retried, through the sync connector is claimed
    through the async one."""
    job_id = sync_jobs.defer(queueing_lock="QL")
    assert sync_driver.connector.job_cancel(CancelParams(job_id=job_id))
    assert sync_driver.run_async(
        lambda connector: connector.job_get(job_id), backend
    ) == sync_jobs.get(job_id)

    assert sync_driver.connector.job_retry(RetryParams(job_id=job_id))

    async def claim(connector: AsyncConnector) -> list[int]:
        return await JobFactory(connector).fetch()

    assert sync_driver.run_async(claim, backend) == [job_id]
    assert sync_jobs.statuses(job_id) == [Status.DOING]


def test_sync_wait_sees_an_async_finish(
    sync_driver: SyncDriver, sync_jobs: SyncJobFactory, backend: str
) -> None:
    """A job finished through the async connector ends a sync wait."""
    job_id = sync_jobs.defer()
    assert sync_jobs.fetch() == [job_id]

    async def finish(connector: AsyncConnector) -> None:
        await JobFactory(connector).finish(job_id, Status.FAILED)

    sync_driver.run_async(finish, backend)

    job = sync_driver.connector.job_wait_finished(job_id, timeout=0)
    assert job is not None
    assert job.status is Status.FAILED
