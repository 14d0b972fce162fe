"""Conformance: manual retry (``job_retry``) of finished jobs, and how a retry
meets locks, queueing locks and abort requests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from procrastinate_anyio import AlreadyEnqueued, Status
from procrastinate_anyio.connectors import CancelParams, RetryParams

from .conftest import ERROR, HOUR

if TYPE_CHECKING:
    from procrastinate_anyio.connectors import AsyncConnector

    from .conftest import Driver, JobFactory

pytestmark = pytest.mark.anyio


async def job_in(jobs: JobFactory, status: Status, **options: object) -> int:
    """A job brought to ``status`` through the connector's own operations."""
    job_id = await jobs.defer(**options)
    if status is Status.TODO:
        return job_id
    if status is Status.CANCELLED:
        assert await jobs.connector.job_cancel(CancelParams(job_id=job_id))
        return job_id
    assert job_id in await jobs.fetch()
    if status is not Status.DOING:
        error = None if status is Status.SUCCEEDED else ERROR
        await jobs.finish(job_id, status, error=error)
    return job_id


async def test_retry_finished_jobs(connector: AsyncConnector, jobs: JobFactory) -> None:
    """Failed, aborted and cancelled jobs go back to todo and run again."""
    statuses = (Status.FAILED, Status.ABORTED, Status.CANCELLED)
    ids = [await job_in(jobs, status) for status in statuses]
    attempts = [(await jobs.get(job_id)).attempts for job_id in ids]

    for job_id in ids:
        assert await connector.job_retry(RetryParams(job_id=job_id))

    for job_id in ids:
        job = await jobs.get(job_id)
        assert (job.status, job.finished_at, job.abort_requested) == (
            Status.TODO,
            None,
            False,
        )
    assert await jobs.fetch() == ids
    # A manual retry is not an attempt: the count is that of the ended runs.
    assert [(await jobs.get(i)).attempts for i in ids] == attempts


async def test_retry_refused(connector: AsyncConnector, jobs: JobFactory) -> None:
    """A job that is waiting, running or succeeded is not retried, nor changed;
    an unknown job is not retried either."""
    statuses = (Status.DOING, Status.SUCCEEDED, Status.TODO)
    ids = [await job_in(jobs, status) for status in statuses]
    before = [await jobs.get(job_id) for job_id in ids]

    for job_id in [*ids, 123456]:
        assert not await connector.job_retry(RetryParams(job_id=job_id, priority=5))

    assert [await jobs.get(job_id) for job_id in ids] == before


async def test_retry_options(connector: AsyncConnector, jobs: JobFactory) -> None:
    """A retry may give the job another priority, queue and lock; without
    them it keeps its own, and its error."""
    moved = await job_in(jobs, Status.FAILED, queue="a", priority=1, lock="A")
    kept = await job_in(jobs, Status.FAILED, queue="a", priority=1, lock="K")

    assert await connector.job_retry(
        RetryParams(job_id=moved, priority=9, queue="b", lock="B")
    )
    assert await connector.job_retry(RetryParams(job_id=kept))

    job = await jobs.get(moved)
    assert (job.priority, job.queue, job.lock) == (9, "b", "B")
    job = await jobs.get(kept)
    assert (job.priority, job.queue, job.lock, job.error) == (1, "a", "K", ERROR)
    assert await jobs.fetch(queues=["b"]) == [moved]


async def test_retry_at(
    driver: Driver, connector: AsyncConnector, jobs: JobFactory
) -> None:
    """A job retried later is not fetched before its time, and is once due."""
    job_id = await job_in(jobs, Status.FAILED)
    retry_at = driver.now() + HOUR

    assert await connector.job_retry(RetryParams(job_id=job_id, retry_at=retry_at))

    assert (await jobs.get(job_id)).scheduled_at == retry_at
    assert await jobs.fetch() == []
    assert await connector.job_next_scheduled_at(None) == retry_at
    await driver.travel(2 * HOUR)
    assert await jobs.fetch() == [job_id]


async def test_retry_queueing_lock(connector: AsyncConnector, jobs: JobFactory) -> None:
    """A retry whose queueing lock a waiting job holds raises AlreadyEnqueued
    and changes nothing; once the lock is free, it goes through and holds it."""
    job_id = await job_in(jobs, Status.FAILED, queueing_lock="Q")
    waiting = await jobs.defer(queueing_lock="Q")
    before = await jobs.get(job_id)

    with pytest.raises(AlreadyEnqueued) as info:
        await connector.job_retry(RetryParams(job_id=job_id))

    assert info.value.queueing_lock == "Q"
    assert await jobs.get(job_id) == before
    await jobs.run(waiting)
    assert await connector.job_retry(RetryParams(job_id=job_id))
    with pytest.raises(AlreadyEnqueued):
        await jobs.defer(queueing_lock="Q")


async def test_retry_waits_for_its_lock(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """A retried job does not run beside a doing job of its lock, its own or
    the one the retry moves it to."""
    own = await job_in(jobs, Status.FAILED, lock="A")
    moved = await job_in(jobs, Status.FAILED)
    busy_a = await job_in(jobs, Status.DOING, lock="A")
    busy_b = await job_in(jobs, Status.DOING, lock="B")

    assert await connector.job_retry(RetryParams(job_id=own))
    assert await connector.job_retry(RetryParams(job_id=moved, lock="B"))

    assert await jobs.fetch() == []
    await jobs.finish(busy_a)
    await jobs.finish(busy_b)
    assert await jobs.fetch() == [own, moved]


async def test_retry_takes_its_turn_on_lock(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """A retried job joins its lock's line in deferral order."""
    first = await job_in(jobs, Status.FAILED, lock="L")
    second = await jobs.defer(lock="L")
    third = await jobs.defer(lock="L")
    assert await jobs.fetch() == [second]

    assert await connector.job_retry(RetryParams(job_id=first))

    order = [second]
    await jobs.finish(second)
    for _ in range(2):
        (claimed,) = await jobs.fetch()
        order.append(claimed)
        await jobs.finish(claimed)
    assert order == [second, first, third]


async def test_waiting_retry_keeps_lock_against_manual_retry(
    driver: Driver, connector: AsyncConnector, jobs: JobFactory
) -> None:
    """A job waiting for its automatic retry keeps its lock; a manually
    retried job of the same lock waits behind it."""
    waiting = await job_in(jobs, Status.DOING, lock="L")
    await jobs.finish(waiting, Status.TODO, retry_at=driver.now() + HOUR)
    failed = await job_in(jobs, Status.FAILED)
    assert await connector.job_retry(RetryParams(job_id=failed, lock="L"))

    assert await jobs.fetch() == []
    await driver.travel(2 * HOUR)
    assert await jobs.fetch() == [waiting]


async def test_aborted_job_is_not_fetched_again(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """A job aborted on request ends aborted; nothing brings it back but a retry."""
    job_id = await job_in(jobs, Status.DOING)
    assert await connector.job_cancel(CancelParams(job_id=job_id, abort=True))
    assert (await jobs.get(job_id)).abort_requested

    await jobs.finish(job_id, Status.ABORTED)

    assert await jobs.statuses(job_id) == [Status.ABORTED]
    assert await jobs.fetch() == []
    assert await connector.job_retry(RetryParams(job_id=job_id))
    assert await jobs.fetch() == [job_id]
    assert not (await jobs.get(job_id)).abort_requested


async def test_waiting_retry_keeps_lock_against_higher_priority(
    driver: Driver, jobs: JobFactory
) -> None:
    """A job waiting for its retry keeps its lock, even against a job of
    higher priority deferred while it ran."""
    first = await job_in(jobs, Status.DOING, lock="L")
    await jobs.defer(lock="L", priority=10)

    await jobs.finish(first, Status.TODO, retry_at=driver.now() + HOUR)

    assert await jobs.fetch() == []
