"""Conformance: ``job_finish_many``, how an attempt's outcome is recorded
(effect on locks: ``test_lock.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from procrastinate_anyio import AlreadyEnqueued, JobError, Status
from procrastinate_anyio.connectors import CancelParams, JobFilter, JobOutcome

from .conftest import ERROR, HOUR

if TYPE_CHECKING:
    from procrastinate_anyio.connectors import AsyncConnector

    from .conftest import Driver, JobFactory

pytestmark = pytest.mark.anyio


async def claimed(jobs: JobFactory, **options: Any) -> int:
    """A job that is doing."""
    job_id = await jobs.defer(**options)
    assert await jobs.fetch() == [job_id]
    return job_id


@pytest.mark.parametrize(
    "result",
    [
        pytest.param(None, id="none"),
        pytest.param(42, id="int"),
        pytest.param("text é", id="str"),
        pytest.param([1, {"a": [True, None]}], id="list"),
        pytest.param({"sum": 3.5, "items": []}, id="dict"),
    ],
)
async def test_succeeded(jobs: JobFactory, result: Any) -> None:
    """A succeeded job keeps its return value."""
    job_id = await claimed(jobs)

    await jobs.finish(job_id, Status.SUCCEEDED, result=result)

    job = await jobs.get(job_id)
    assert (job.status, job.result, job.error) == (Status.SUCCEEDED, result, None)
    assert job.finished_at is not None
    assert (job.attempts, job.worker_id) == (1, 1)


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(ERROR, id="traceback"),
        pytest.param(JobError(type="mod.Custom", message=""), id="no-traceback"),
    ],
)
@pytest.mark.parametrize(
    "status",
    [
        pytest.param(Status.FAILED, id="failed"),
        pytest.param(Status.ABORTED, id="aborted"),
    ],
)
async def test_failed(jobs: JobFactory, error: JobError, status: Status) -> None:
    """A failed or aborted job keeps its error; a result is not stored."""
    job_id = await claimed(jobs)

    await jobs.finish(job_id, status, error=error, result="ignored")

    job = await jobs.get(job_id)
    assert (job.status, job.error, job.result) == (status, error, None)
    assert job.finished_at is not None


async def test_retry(driver: Driver, jobs: JobFactory) -> None:
    """A retried job goes back to todo with its new schedule, priority, queue and lock."""
    job_id = await claimed(jobs, queue="q1", priority=1, lock="L1")
    retry_at = driver.now() + HOUR

    await jobs.finish(
        job_id,
        Status.TODO,
        error=ERROR,
        retry_at=retry_at,
        retry_priority=-3,
        retry_queue="q2",
        retry_lock="L2",
    )

    job = await jobs.get(job_id)
    assert (job.status, job.scheduled_at, job.priority, job.queue, job.lock) == (
        Status.TODO,
        retry_at,
        -3,
        "q2",
        "L2",
    )
    assert (job.error, job.result, job.finished_at, job.attempts) == (
        ERROR,
        None,
        None,
        1,
    )
    assert await jobs.fetch() == []
    await driver.travel(2 * HOUR)
    assert await jobs.fetch(queues=["q1"]) == []
    assert await jobs.fetch(queues=["q2"]) == [job_id]
    assert (await jobs.get(job_id)).attempts == 1  # the claim does not count


async def test_retry_keeps_options(driver: Driver, jobs: JobFactory) -> None:
    """A retry without new options keeps the job's priority, queue and lock,
    and is due at once: its ``scheduled_at`` is when it went back to todo
    (where its wait in the queue starts)."""
    job_id = await claimed(jobs, queue="q1", priority=4, lock="L1")
    claimed_at = (await jobs.get(job_id)).started_at

    await jobs.finish(job_id, Status.TODO)

    job = await jobs.get(job_id)
    assert (job.status, job.priority, job.queue, job.lock) == (
        Status.TODO,
        4,
        "q1",
        "L1",
    )
    assert job.scheduled_at is not None
    assert claimed_at is not None
    assert claimed_at <= job.scheduled_at <= driver.now()
    assert await jobs.fetch() == [job_id]


async def test_success_after_retry_clears_error(jobs: JobFactory) -> None:
    """The attempt that succeeds replaces the error of the one that failed."""
    job_id = await claimed(jobs)
    await jobs.finish(job_id, Status.TODO, error=ERROR)
    assert await jobs.fetch() == [job_id]

    await jobs.finish(job_id, Status.SUCCEEDED, result=1)

    job = await jobs.get(job_id)
    assert (job.status, job.result, job.error, job.attempts) == (
        Status.SUCCEEDED,
        1,
        None,
        2,
    )


async def test_delete(jobs: JobFactory, connector: AsyncConnector) -> None:
    """``delete_job`` deletes the finished job instead of keeping it."""
    job_id = await claimed(jobs)

    await jobs.finish(job_id, Status.SUCCEEDED, delete_job=True)

    assert await connector.job_get(job_id) is None


async def test_many_at_once(connector: AsyncConnector, jobs: JobFactory) -> None:
    """One call records the outcomes of several jobs, each its own."""
    ids = [await jobs.defer() for _ in range(4)]
    assert await jobs.fetch() == ids

    await connector.job_finish_many(
        [
            JobOutcome(job_id=ids[0], status=Status.SUCCEEDED, result="r0"),
            JobOutcome(job_id=ids[1], status=Status.FAILED, error=ERROR),
            JobOutcome(job_id=ids[2], status=Status.TODO),
            JobOutcome(job_id=ids[3], status=Status.SUCCEEDED, delete_job=True),
        ]
    )

    assert await jobs.statuses(*ids[:3]) == [
        Status.SUCCEEDED,
        Status.FAILED,
        Status.TODO,
    ]
    assert (await jobs.get(ids[0])).result == "r0"
    assert await connector.job_get(ids[3]) is None


@pytest.mark.parametrize(
    "state",
    [
        pytest.param("todo", id="todo"),
        pytest.param("succeeded", id="succeeded"),
        pytest.param("cancelled", id="cancelled"),
    ],
)
@pytest.mark.parametrize(
    "outcome",
    [
        pytest.param({"status": Status.FAILED, "error": ERROR}, id="fail"),
        pytest.param({"status": Status.TODO}, id="retry"),
        pytest.param({"status": Status.SUCCEEDED, "delete_job": True}, id="delete"),
    ],
)
async def test_ignores_job_not_doing(
    connector: AsyncConnector, jobs: JobFactory, state: str, outcome: dict[str, Any]
) -> None:
    """The outcome of a job that is not doing is ignored."""
    job_id = await jobs.defer()
    if state == "succeeded":
        await jobs.run(job_id)
    elif state == "cancelled":
        assert await connector.job_cancel(CancelParams(job_id=job_id))
    before = await jobs.get(job_id)

    await connector.job_finish_many([JobOutcome(job_id=job_id, **outcome)])

    assert await jobs.get(job_id) == before


async def test_ignores_unknown_job(connector: AsyncConnector, jobs: JobFactory) -> None:
    """An outcome for an unknown job is ignored; the others are recorded."""
    job_id = await claimed(jobs)

    await connector.job_finish_many(
        [
            JobOutcome(job_id=777_777, status=Status.SUCCEEDED),
            JobOutcome(job_id=job_id, status=Status.SUCCEEDED),
        ]
    )

    assert await jobs.statuses(job_id) == [Status.SUCCEEDED]


async def test_finish_nothing(connector: AsyncConnector, jobs: JobFactory) -> None:
    """Finishing an empty list of outcomes does nothing."""
    job_id = await claimed(jobs)

    await connector.job_finish_many([])

    assert await jobs.statuses(job_id) == [Status.DOING]


async def test_retry_with_taken_queueing_lock(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """A retry whose queueing lock was taken meanwhile neither raises nor
    leaves two todo jobs with that queueing lock: the retried job fails."""
    job_id = await claimed(jobs, queueing_lock="ql")
    newer = await jobs.defer(queueing_lock="ql")

    try:
        await jobs.finish(job_id, Status.TODO)
    except AlreadyEnqueued:
        pytest.fail("finishing a job raised AlreadyEnqueued")

    todo = await connector.job_list(JobFilter(queueing_lock="ql", status=Status.TODO))
    assert len(todo) == 1
    assert (await jobs.get(newer)).status is Status.TODO
    assert (await jobs.get(job_id)).status is Status.FAILED
