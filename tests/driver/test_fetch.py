"""Conformance: ``job_fetch_many``, the batch claim (locks: ``test_lock.py``)."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

import anyio
import pytest

from procrastinate_anyio import Status
from procrastinate_anyio.connectors import CancelParams, FetchParams
from tests.support import HANG_GUARD_SECONDS

from .conftest import HOUR, WORKER_ID, to_defer

if TYPE_CHECKING:
    from procrastinate_anyio.connectors import AsyncConnector

    from .conftest import Driver, JobFactory

pytestmark = pytest.mark.anyio

SECOND = datetime.timedelta(seconds=1)


async def test_priority_then_age(jobs: JobFactory) -> None:
    """Jobs are claimed highest priority first, then oldest first."""
    low = await jobs.defer(priority=-5)
    mid_old = await jobs.defer(priority=0)
    high = await jobs.defer(priority=10)
    mid_new = await jobs.defer(priority=0)

    assert await jobs.fetch() == [high, mid_old, mid_new, low]


async def test_limit(jobs: JobFactory) -> None:
    """A fetch claims at most ``limit`` jobs, the best ones, and leaves the rest."""
    ids = [await jobs.defer(priority=p) for p in (1, 3, 2, 0)]

    assert await jobs.fetch(limit=2) == [ids[1], ids[2]]
    assert await jobs.statuses(*ids) == [
        Status.TODO,
        Status.DOING,
        Status.DOING,
        Status.TODO,
    ]
    assert await jobs.fetch(limit=1) == [ids[0]]


@pytest.mark.parametrize(
    ("queues", "expected"),
    [
        pytest.param(None, ["a", "b", "c"], id="all"),
        pytest.param(["b"], ["b"], id="one"),
        pytest.param(["c", "a", "zzz"], ["a", "c"], id="several"),
        pytest.param([], [], id="none"),
    ],
)
async def test_queues(
    jobs: JobFactory, queues: list[str] | None, expected: list[str]
) -> None:
    """Only jobs of the given queues are claimed; None means every queue."""
    ids = {q: await jobs.defer(queue=q) for q in ("a", "b", "c")}

    assert await jobs.fetch(queues=queues) == [ids[q] for q in expected]


async def test_queue_listed_twice(jobs: JobFactory) -> None:
    """A queue listed twice counts once: the limit is still filled."""
    ids = [await jobs.defer(queue="a") for _ in range(3)]

    assert await jobs.fetch(queues=["a", "a"], limit=2) == ids[:2]


async def test_not_before_schedule(driver: Driver, jobs: JobFactory) -> None:
    """A job scheduled in the future waits; one scheduled in the past is due."""
    future = await jobs.defer(scheduled_at=driver.now() + HOUR, priority=10)
    past = await jobs.defer(scheduled_at=driver.now() - SECOND)

    assert await jobs.fetch() == [past]
    await driver.travel(2 * HOUR)
    assert await jobs.fetch() == [future]


async def test_claim_fields(
    driver: Driver, connector: AsyncConnector, jobs: JobFactory
) -> None:
    """A claimed job is doing, for this worker; its attempts count the
    attempts that ended, so 0 on the first claim."""
    job_id = await jobs.defer()

    (claimed,) = await connector.job_fetch_many(
        FetchParams(worker_id=WORKER_ID, queues=None, limit=5)
    )

    assert (claimed.id, claimed.status, claimed.worker_id, claimed.attempts) == (
        job_id,
        Status.DOING,
        WORKER_ID,
        0,
    )
    assert claimed.started_at is not None
    assert await jobs.get(job_id) == claimed


async def test_claim_counts_attempts(jobs: JobFactory) -> None:
    """Each attempt that ends counts one more attempt (Procrastinate's
    numbers: the running attempt sees those before it)."""
    job_id = await jobs.defer()
    for attempt in (0, 1, 2):
        assert await jobs.fetch() == [job_id]
        assert (await jobs.get(job_id)).attempts == attempt
        await jobs.finish(job_id, Status.TODO)


async def test_claimed_once(jobs: JobFactory) -> None:
    """A claimed job is not claimed again, and finished jobs are never claimed."""
    first = await jobs.defer()
    second = await jobs.defer()
    assert await jobs.fetch(limit=1) == [first]
    await jobs.finish(first)

    assert await jobs.fetch() == [second]
    assert await jobs.fetch() == []


async def test_concurrent_fetches_share_nothing(connector: AsyncConnector) -> None:
    """Concurrent fetches never claim the same job, and none is lost."""
    ids = await connector.job_defer_many([to_defer(priority=i % 3) for i in range(20)])
    claims: dict[int, list[int]] = {}

    async def fetch(worker_id: int) -> None:
        jobs = await connector.job_fetch_many(
            FetchParams(worker_id=worker_id, queues=None, limit=4)
        )
        claims[worker_id] = [job.id for job in jobs]
        assert {job.worker_id for job in jobs} <= {worker_id}

    with anyio.fail_after(HANG_GUARD_SECONDS):
        async with anyio.create_task_group() as tg:
            for worker_id in range(1, 5):
                tg.start_soon(fetch, worker_id)

    claimed = [job_id for got in claims.values() for job_id in got]
    assert len(claimed) == len(set(claimed))
    rest = await connector.job_fetch_many(
        FetchParams(worker_id=9, queues=None, limit=100)
    )
    assert sorted(claimed + [job.id for job in rest]) == ids


async def test_abort_request_cleared_by_new_attempt(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """A new attempt of a job starts without the previous attempt's abort request."""
    job_id = await jobs.defer()
    assert await jobs.fetch() == [job_id]
    assert await connector.job_cancel(CancelParams(job_id=job_id, abort=True))
    await jobs.finish(job_id, Status.TODO)

    assert await jobs.fetch() == [job_id]
    assert (await jobs.get(job_id)).abort_requested is False
