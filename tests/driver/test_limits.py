"""Conformance: the claim under global limits (``FetchParams.limits``):
concurrency and rate limits on tasks and queues, enforced by the claim."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from procrastinate_anyio import Status
from procrastinate_anyio._limits import Limit, RateLimit
from procrastinate_anyio.connectors import FetchParams, JobFilter, JobOutcome

from .conftest import HOUR, WORKER_ID

if TYPE_CHECKING:
    from procrastinate_anyio.connectors import AsyncConnector

    from .conftest import Driver, JobFactory

pytestmark = pytest.mark.anyio


async def claim(
    connector: AsyncConnector,
    *limits: Limit,
    limit: int = 10,
    queues: tuple[str, ...] | None = None,
) -> list[tuple[str, str]]:
    """Claim under ``limits``; the (task, queue) of each claimed job, in
    claim order."""
    jobs = await connector.job_fetch_many(
        FetchParams(worker_id=WORKER_ID, queues=queues, limit=limit, limits=limits)
    )
    return [(job.task_name, job.queue) for job in jobs]


def task_limit(
    name: str, concurrency: int | None = None, rate: str | None = None
) -> Limit:
    return Limit(
        scope="task",
        names=(name,),
        concurrency=concurrency,
        rate=None if rate is None else RateLimit.parse(rate),
    )


async def test_concurrency_limit_of_a_task(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """At most N jobs of a limited task are doing; others are claimed freely;
    a finished job leaves room for the next."""
    limited = task_limit("slow", concurrency=2)
    for _ in range(4):
        await jobs.defer(task_name="slow")
    await jobs.defer(task_name="fast")

    first = await claim(connector, limited)
    assert sorted(first) == [
        ("fast", "default"),
        ("slow", "default"),
        ("slow", "default"),
    ]
    assert await claim(connector, limited) == []

    (running, *_) = await connector.job_list(
        JobFilter(status=Status.DOING, task_name="slow")
    )
    await connector.job_finish_many(
        [JobOutcome(job_id=running.id, status=Status.SUCCEEDED)]
    )
    assert await claim(connector, limited) == [("slow", "default")]


async def test_a_limited_task_at_the_head_hides_no_other_job(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """Jobs of a capped task ahead in the line do not keep the others waiting."""
    limited = task_limit("slow", concurrency=1)
    for _ in range(5):
        await jobs.defer(task_name="slow", priority=10)
    for _ in range(3):
        await jobs.defer(task_name="fast")

    assert sorted(await claim(connector, limited, limit=4)) == [
        ("fast", "default"),
        ("fast", "default"),
        ("fast", "default"),
        ("slow", "default"),
    ]


async def test_queue_limit_and_both_limits(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """A queue limit caps the queue's jobs whatever their task; a job under a
    task limit and a queue limit respects both."""
    queue_limit = Limit(scope="queue", names=("mail",), concurrency=2)
    tight_task = task_limit("send", concurrency=1)
    for task in ("send", "send", "digest", "digest"):
        await jobs.defer(task_name=task, queue="mail")

    claimed = await claim(connector, queue_limit, tight_task)

    assert sorted(claimed) == [("digest", "mail"), ("send", "mail")]
    assert await claim(connector, queue_limit, tight_task) == []


async def test_rate_limit(connector: AsyncConnector, jobs: JobFactory) -> None:
    """A rate limit counts the starts within its period, across claims, even
    of jobs that ended since; other tasks are not limited by it."""
    limited = task_limit("api", rate="3/h")
    for _ in range(5):
        await jobs.defer(task_name="api")
    await jobs.defer(task_name="other")

    assert (await claim(connector, limited, limit=2)) == [("api", "default")] * 2
    done = await connector.job_list(JobFilter(status=Status.DOING))
    await connector.job_finish_many(
        [JobOutcome(job_id=job.id, status=Status.SUCCEEDED) for job in done]
    )
    assert sorted(await claim(connector, limited)) == [
        ("api", "default"),
        ("other", "default"),
    ]
    assert await claim(connector, limited) == []


async def test_no_limit_claims_as_usual(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """Limits on tasks that have no job change nothing."""
    for _ in range(3):
        await jobs.defer(task_name="free")

    assert len(await claim(connector, task_limit("elsewhere", concurrency=1))) == 3


async def test_aliases_share_the_limit(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """A limit on a task and its alias counts the jobs of both names."""
    limited = Limit(
        scope="task", names=("api", "old_api"), concurrency=2, rate=RateLimit(3, 3600)
    )
    for task in ("old_api", "api", "old_api", "api"):
        await jobs.defer(task_name=task)

    assert await claim(connector, limited) == [
        ("old_api", "default"),
        ("api", "default"),
    ]
    done = await connector.job_list(JobFilter(status=Status.DOING))
    await connector.job_finish_many(
        [JobOutcome(job_id=job.id, status=Status.SUCCEEDED) for job in done]
    )
    assert await claim(connector, limited) == [("old_api", "default")]


async def test_limited_claim_reads_the_ready_jobs_of_its_queues(
    driver: Driver, jobs: JobFactory
) -> None:
    """Under limits, the claim reads the jobs the plain claim would: of the
    queues asked for, not paused, due, ready; best first."""
    connector = driver.connector
    limited = task_limit("slow", concurrency=1)
    await jobs.defer(task_name="slow", queue="a", priority=5)
    await jobs.defer(task_name="slow", queue="b", priority=5)
    await jobs.defer(task_name="fast", queue="a")
    await jobs.defer(task_name="fast", queue="b", priority=9)
    await jobs.defer(task_name="fast", queue="elsewhere", priority=9)
    await jobs.defer(task_name="fast", queue="paused", priority=9)
    await jobs.defer(task_name="fast", queue="a", scheduled_at=driver.now() + HOUR)
    await jobs.defer(task_name="fast", queue="a", lock="busy")
    await jobs.defer(task_name="fast", queue="a", lock="busy")  # waits its turn
    await connector.queue_pause("paused")

    assert await claim(connector, limited, queues=("a", "b", "paused", "a")) == [
        ("fast", "b"),
        ("slow", "a"),
        ("fast", "a"),
        ("fast", "a"),
    ]
    assert await claim(connector, limited, queues=("a", "b")) == []
