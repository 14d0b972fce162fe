"""Conformance: locks. At most one job of a lock is doing at a time; a lock's
jobs run in priority order, then in deferral order."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

import pytest

from procrastinate_anyio import Status
from procrastinate_anyio.connectors import CancelParams, FetchParams

from .conftest import HOUR, to_defer

if TYPE_CHECKING:
    from procrastinate_anyio.connectors import AsyncConnector

    from .conftest import Driver, JobFactory

pytestmark = pytest.mark.anyio


async def run_order(jobs: JobFactory, count: int) -> list[int]:
    """Fetch and finish jobs one at a time; the order in which they ran."""
    order = []
    for _ in range(count):
        (job_id,) = await jobs.fetch()
        await jobs.finish(job_id)
        order.append(job_id)
    assert await jobs.fetch() == []
    return order


async def test_one_doing_job_per_lock(jobs: JobFactory) -> None:
    """A fetch claims one job of a lock, whatever the limit."""
    first = await jobs.defer(lock="L")
    await jobs.defer(lock="L")
    await jobs.defer(lock="L")

    assert await jobs.fetch(limit=10) == [first]
    assert await jobs.fetch(limit=10) == []


async def test_one_doing_job_per_lock_in_one_batch(connector: AsyncConnector) -> None:
    """Jobs of a lock deferred in one batch are claimed one at a time too."""
    ids = await connector.job_defer_many([to_defer(lock="L") for _ in range(3)])
    params = FetchParams(worker_id=1, queues=None, limit=10)

    assert [job.id for job in await connector.job_fetch_many(params)] == ids[:1]


async def test_locks_are_independent(jobs: JobFactory) -> None:
    """Jobs of different locks, and jobs without a lock, run side by side."""
    a1 = await jobs.defer(lock="A")
    await jobs.defer(lock="A")
    b1 = await jobs.defer(lock="B")
    free = [await jobs.defer(), await jobs.defer()]

    assert await jobs.fetch() == [a1, b1, *free]


async def test_lock_order(jobs: JobFactory) -> None:
    """A lock's jobs run by priority, then in deferral order."""
    p0 = await jobs.defer(lock="L", priority=0)
    p5_old = await jobs.defer(lock="L", priority=5)
    p5_new = await jobs.defer(lock="L", priority=5)
    p1 = await jobs.defer(lock="L", priority=1)

    assert await run_order(jobs, 4) == [p5_old, p5_new, p1, p0]


async def test_lock_order_in_one_batch(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """Lock order holds for jobs deferred in one batch."""
    ids = await connector.job_defer_many(
        [to_defer(lock="L", priority=p) for p in (0, 2, 1, 2)]
    )

    assert await run_order(jobs, 4) == [ids[1], ids[3], ids[2], ids[0]]


async def test_waits_for_doing_job(jobs: JobFactory) -> None:
    """A job behind a doing job of its lock is fetched once that one finishes."""
    first = await jobs.defer(lock="L")
    assert await jobs.fetch() == [first]
    second = await jobs.defer(lock="L", priority=100)  # priority does not preempt
    assert await jobs.fetch() == []

    await jobs.finish(first, Status.FAILED)

    assert await jobs.fetch() == [second]


async def test_later_higher_priority_first(jobs: JobFactory) -> None:
    """On a free lock, a higher-priority job deferred later runs first."""
    early_low = await jobs.defer(lock="L", priority=0)
    late_high = await jobs.defer(lock="L", priority=3)

    assert await run_order(jobs, 2) == [late_high, early_low]


async def test_future_job_does_not_block_lock(driver: Driver, jobs: JobFactory) -> None:
    """A future job does not block its lock: due jobs deferred after it run first.

    Decision: a schedule says "not before", not "hold the lock until then";
    the future job takes its turn once due.
    """
    future = await jobs.defer(lock="L", scheduled_at=driver.now() + HOUR, priority=9)
    due = await jobs.defer(lock="L")

    assert await jobs.fetch() == [due]
    await jobs.finish(due)
    assert await jobs.fetch() == []
    await driver.travel(2 * HOUR)
    assert await jobs.fetch() == [future]


async def test_future_job_alone_runs_when_due(driver: Driver, jobs: JobFactory) -> None:
    """A lock's only job, scheduled in the future, is fetched once due."""
    job_id = await jobs.defer(lock="L", scheduled_at=driver.now() + HOUR)
    assert await jobs.fetch() == []

    await driver.travel(2 * HOUR)

    assert await jobs.fetch() == [job_id]


async def test_future_job_after_due_job_finishes(
    driver: Driver, jobs: JobFactory
) -> None:
    """A future job left alone on its lock when the due job finishes runs when due."""
    due = await jobs.defer(lock="L")
    future = await jobs.defer(lock="L", scheduled_at=driver.now() + HOUR)
    await jobs.run(due)

    await driver.travel(2 * HOUR)

    assert await jobs.fetch() == [future]


async def test_earliest_future_job_first(driver: Driver, jobs: JobFactory) -> None:
    """Of a lock's future jobs, the one due first runs first, when due."""
    later = await jobs.defer(lock="L", scheduled_at=driver.now() + 3 * HOUR, priority=5)
    sooner = await jobs.defer(lock="L", scheduled_at=driver.now() + HOUR)

    await driver.travel(2 * HOUR)
    assert await jobs.fetch() == [sooner]
    await jobs.finish(sooner)
    assert await jobs.fetch() == []
    await driver.travel(2 * HOUR)
    assert await jobs.fetch() == [later]


async def test_retry_keeps_lock(driver: Driver, jobs: JobFactory) -> None:
    """A failed job waiting for its retry keeps its lock: the next job waits."""
    first = await jobs.defer(lock="L")
    second = await jobs.defer(lock="L")
    assert await jobs.fetch() == [first]

    await jobs.finish(first, Status.TODO, retry_at=driver.now() + HOUR)

    assert await jobs.fetch() == []
    await driver.travel(2 * HOUR)
    assert await run_order(jobs, 2) == [first, second]


async def test_retry_at_once_keeps_lock(jobs: JobFactory) -> None:
    """A job retried at once runs again before the next job of its lock."""
    first = await jobs.defer(lock="L")
    second = await jobs.defer(lock="L")
    assert await jobs.fetch() == [first]

    await jobs.finish(first, Status.TODO)

    assert await run_order(jobs, 2) == [first, second]


async def test_retry_to_another_lock(jobs: JobFactory) -> None:
    """A retry onto another lock frees the old lock and queues behind the new one."""
    moved = await jobs.defer(lock="A")
    a_next = await jobs.defer(lock="A")
    b_doing = await jobs.defer(lock="B")
    assert await jobs.fetch() == [moved, b_doing]

    await jobs.finish(moved, Status.TODO, retry_lock="B")

    assert (await jobs.get(moved)).lock == "B"
    assert await jobs.fetch() == [a_next]
    await jobs.finish(b_doing)
    assert await jobs.fetch() == [moved]


async def test_cancel_active_job_frees_lock(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """Cancelling the next job of a lock lets the one after it be fetched."""
    first = await jobs.defer(lock="L")
    second = await jobs.defer(lock="L")

    assert await connector.job_cancel(CancelParams(job_id=first))

    assert await jobs.fetch() == [second]


async def test_delete_active_job_frees_lock(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """Deleting the next job of a lock lets the one after it be fetched."""
    first = await jobs.defer(lock="L")
    second = await jobs.defer(lock="L")

    assert await connector.job_cancel(CancelParams(job_id=first, delete_job=True))

    assert await jobs.fetch() == [second]


async def test_abort_does_not_free_lock(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """An abort request leaves the lock held until the doing job finishes."""
    first = await jobs.defer(lock="L")
    second = await jobs.defer(lock="L")
    assert await jobs.fetch() == [first]

    assert await connector.job_cancel(CancelParams(job_id=first, abort=True))

    assert await jobs.fetch() == []
    await jobs.finish(first, Status.ABORTED)
    assert await jobs.fetch() == [second]


@pytest.mark.parametrize(
    "delete_job",
    [
        pytest.param(False, id="finish"),
        pytest.param(True, id="delete"),
    ],
)
async def test_finish_frees_lock(jobs: JobFactory, delete_job: bool) -> None:
    """A job that finishes, or is deleted when it finishes, frees its lock."""
    first = await jobs.defer(lock="L")
    second = await jobs.defer(lock="L")
    assert await jobs.fetch() == [first]

    await jobs.finish(first, Status.SUCCEEDED, delete_job=delete_job)

    assert await jobs.fetch() == [second]


async def test_lock_line_survives_many_jobs(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """Fifty jobs of one lock run one at a time, in order."""
    ids = await connector.job_defer_many([to_defer(lock="L") for _ in range(50)])

    assert await run_order(jobs, 50) == ids


async def test_past_schedule_is_due(driver: Driver, jobs: JobFactory) -> None:
    """A job scheduled in the past takes its turn on its lock like any due job."""
    past = await jobs.defer(
        lock="L", scheduled_at=driver.now() - datetime.timedelta(seconds=1)
    )
    plain = await jobs.defer(lock="L")

    assert await run_order(jobs, 2) == [past, plain]
