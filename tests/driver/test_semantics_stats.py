"""Conformance: job counts per queue, task and lock (``job_stats``), deleting
old finished jobs (``job_delete_old``) and the next scheduled time
(``job_next_scheduled_at``)."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

import attrs
import pytest

from procrastinate_anyio import Status
from procrastinate_anyio.connectors import CancelParams, DeleteOldParams, GroupStats
from procrastinate_anyio.connectors import JobFilter as Filter
from procrastinate_anyio.connectors.postgres import connect

from .conftest import HOUR

if TYPE_CHECKING:
    from procrastinate_anyio.connectors import AsyncConnector

    from .conftest import Driver, JobFactory

pytestmark = pytest.mark.anyio

SECOND = datetime.timedelta(seconds=1)


async def age_finished(driver: Driver, delta: datetime.timedelta) -> None:
    """Let ``delta`` pass for the finished jobs (the in-memory clock moves; on
    PostgreSQL, every ``finished_at`` moves back)."""
    if driver.name == "memory":
        await driver.travel(delta)
        return
    async with await connect(driver.connector.conninfo) as conn:  # type: ignore[attr-defined]  # PsycopgConnector
        await conn.execute(
            "UPDATE pa_jobs SET finished_at = finished_at - %s", (delta,)
        )


@pytest.fixture
async def mixed(connector: AsyncConnector, jobs: JobFactory) -> dict[str, int]:
    """Jobs in two queues, two tasks and two locks, in every status."""
    ids = {
        "doing": await jobs.defer(queue="a", task_name="t1", lock="L1"),
        "succeeded": await jobs.defer(queue="a", task_name="t1"),
        "failed": await jobs.defer(queue="b", task_name="t2", lock="L2"),
        "aborted": await jobs.defer(queue="b", task_name="t1"),
    }
    claimed = await jobs.fetch()
    assert sorted(claimed) == sorted(ids.values())
    for status in (Status.SUCCEEDED, Status.FAILED, Status.ABORTED):
        await jobs.finish(ids[status.value], status)
    ids["cancelled"] = await jobs.defer(queue="b", task_name="t2")
    assert await connector.job_cancel(CancelParams(job_id=ids["cancelled"]))
    ids["todo"] = await jobs.defer(queue="a", task_name="t2", lock="L1")
    return ids


async def test_counts(connector: AsyncConnector, mixed: dict[str, int]) -> None:
    """Counts per status for each queue, task and lock, by name; jobs without
    a lock are left out of the locks."""
    assert await connector.job_stats("queue", Filter()) == [
        GroupStats(name="a", jobs_count=3, todo=1, doing=1, succeeded=1),
        GroupStats(name="b", jobs_count=3, failed=1, cancelled=1, aborted=1),
    ]
    assert await connector.job_stats("task", Filter()) == [
        GroupStats(name="t1", jobs_count=3, doing=1, succeeded=1, aborted=1),
        GroupStats(name="t2", jobs_count=3, todo=1, failed=1, cancelled=1),
    ]
    assert await connector.job_stats("lock", Filter()) == [
        GroupStats(name="L1", jobs_count=2, todo=1, doing=1),
        GroupStats(name="L2", jobs_count=1, failed=1),
    ]


FILTER_CASES = [
    ("queue", Filter(task_name="t2"), [("a", 1), ("b", 2)]),
    ("task", Filter(queue="a"), [("t1", 2), ("t2", 1)]),
    ("task", Filter(status=Status.TODO), [("t2", 1)]),
    ("queue", Filter(lock="L1"), [("a", 2)]),
    ("lock", Filter(queue="b"), [("L2", 1)]),
    ("task", Filter(limit=1), [("t1", 3)]),
    ("queue", Filter(queue="nowhere"), []),
]


async def test_filters(connector: AsyncConnector, mixed: dict[str, int]) -> None:
    """Only the jobs matching the filters are counted; ``limit`` caps the groups."""
    for group_by, filters, expected in FILTER_CASES:
        groups = await connector.job_stats(group_by, filters)  # type: ignore[arg-type]  # a Literal
        assert [(g.name, g.jobs_count) for g in groups] == expected, filters


async def test_no_jobs(connector: AsyncConnector) -> None:
    """Without jobs there are no groups."""
    assert await connector.job_stats("queue", Filter()) == []


async def test_delete_old_by_status(
    driver: Driver, connector: AsyncConnector, mixed: dict[str, int]
) -> None:
    """Old finished jobs of the given statuses are deleted; waiting and
    running jobs never are."""
    await age_finished(driver, 2 * HOUR)

    async def delete(*statuses: Status) -> int:
        params = DeleteOldParams(older_than=HOUR, statuses=statuses)
        return await connector.job_delete_old(params)

    assert await delete(Status.TODO, Status.DOING) == 0
    assert await delete(Status.SUCCEEDED) == 1
    assert await delete(*Status) == 3

    left = {job.id for job in await connector.job_list(Filter())}
    assert left == {mixed["todo"], mixed["doing"]}


async def test_delete_old_by_age_and_queue(
    driver: Driver, connector: AsyncConnector, jobs: JobFactory
) -> None:
    """Only jobs finished more than ``older_than`` ago are deleted, of
    ``queue`` when given."""
    old_a = await jobs.defer(queue="a")
    await jobs.run(old_a)
    old_b = await jobs.defer(queue="b")
    await jobs.run(old_b)
    await age_finished(driver, 2 * HOUR)
    recent = await jobs.defer(queue="b")
    await jobs.run(recent)
    await age_finished(driver, SECOND)
    params = DeleteOldParams(older_than=HOUR, statuses=(Status.SUCCEEDED,))

    assert await connector.job_delete_old(attrs.evolve(params, queue="b")) == 1
    assert [job.id for job in await connector.job_list(Filter())] == [old_a, recent]
    assert await connector.job_delete_old(params) == 1
    assert [job.id for job in await connector.job_list(Filter())] == [recent]


async def test_next_scheduled_at(
    driver: Driver, connector: AsyncConnector, jobs: JobFactory
) -> None:
    """The earliest future todo job of the queues; None when there is none.
    Due and cancelled jobs do not count."""
    now = driver.now()
    assert await connector.job_next_scheduled_at(None) is None
    await jobs.defer(queue="a", scheduled_at=now + 2 * HOUR)
    await jobs.defer(queue="b", scheduled_at=now + HOUR)
    await jobs.defer(queue="a", scheduled_at=now - HOUR)
    await jobs.defer(queue="a")
    cancelled = await jobs.defer(queue="b", scheduled_at=now + HOUR / 2)
    assert await connector.job_cancel(CancelParams(job_id=cancelled))

    assert await connector.job_next_scheduled_at(None) == now + HOUR
    assert await connector.job_next_scheduled_at(["a"]) == now + 2 * HOUR
    assert await connector.job_next_scheduled_at(["c"]) is None


async def test_next_scheduled_locked_job(
    driver: Driver, connector: AsyncConnector, jobs: JobFactory
) -> None:
    """A future job waiting on its lock is reported, and is fetched once due."""
    doing = await jobs.defer(lock="L")
    assert await jobs.fetch() == [doing]
    due_at = driver.now() + HOUR
    future = await jobs.defer(lock="L", scheduled_at=due_at)
    await jobs.finish(doing)
    assert await connector.job_next_scheduled_at(None) == due_at

    await driver.travel(2 * HOUR)

    assert await connector.job_next_scheduled_at(None) is None
    assert await jobs.fetch() == [future]
