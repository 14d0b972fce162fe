"""Conformance: ``job_defer_many`` and queueing locks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from procrastinate_anyio import AlreadyEnqueued, Status
from procrastinate_anyio.connectors import CancelParams, JobFilter

from .conftest import HOUR, to_defer

if TYPE_CHECKING:
    from procrastinate_anyio.connectors import AsyncConnector

    from .conftest import Driver, JobFactory

pytestmark = pytest.mark.anyio


async def all_jobs(connector: AsyncConnector) -> list[int]:
    return [job.id for job in await connector.job_list(JobFilter())]


async def test_defer_many_returns_ids_in_order(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """The ids come back in the order of the jobs, each naming its own job."""
    names = ["c", "a", "b", "d"]
    ids = await connector.job_defer_many([to_defer(task_name=n) for n in names])

    assert ids == sorted(ids)
    assert len(set(ids)) == 4
    assert [(await jobs.get(i)).task_name for i in ids] == names
    assert await all_jobs(connector) == ids


async def test_defer_nothing(connector: AsyncConnector) -> None:
    """Deferring an empty batch writes nothing and returns no ids."""
    assert await connector.job_defer_many([]) == []
    assert await all_jobs(connector) == []


async def test_new_job_fields(driver: Driver, jobs: JobFactory) -> None:
    """A new job is todo, never attempted, with the options it was deferred with."""
    at = driver.now() + HOUR
    job_id = await jobs.defer(
        queue="emails",
        task_name="send",
        args={"to": "a@b.c"},
        priority=7,
        lock="user-1",
        queueing_lock="send-user-1",
        scheduled_at=at,
    )

    job = await jobs.get(job_id)
    assert (job.id, job.queue, job.task_name, dict(job.task_kwargs)) == (
        job_id,
        "emails",
        "send",
        {"to": "a@b.c"},
    )
    assert (job.priority, job.lock, job.queueing_lock, job.scheduled_at) == (
        7,
        "user-1",
        "send-user-1",
        at,
    )
    assert (job.status, job.attempts, job.abort_requested, job.worker_id) == (
        Status.TODO,
        0,
        False,
        None,
    )
    assert job.created_at is not None
    assert (job.started_at, job.finished_at, job.result, job.error) == (None,) * 4


async def test_a_job_alone_is_written_as_in_a_batch(
    driver: Driver, connector: AsyncConnector, jobs: JobFactory
) -> None:
    """One job deferred alone is written as the same job deferred in a
    batch, every option and header kept."""
    at = driver.now() + HOUR

    def job(n: int) -> Any:
        return to_defer(
            queue="emails",
            task_name="send",
            args={"to": "a@b.c", "n": n},
            priority=-3,
            lock=f"user-{n}",
            queueing_lock=f"send-{n}",
            scheduled_at=at,
            headers={"trace": f"t-{n}"},
        )

    (alone,) = await connector.job_defer_many([job(1)])
    batched, _ = await connector.job_defer_many([job(2), to_defer()])

    def fields(found: Any) -> tuple[Any, ...]:
        return (
            found.queue,
            found.task_name,
            found.priority,
            found.scheduled_at,
            found.status,
            found.attempts,
        )

    one, other = await jobs.get(alone), await jobs.get(batched)
    assert fields(one) == fields(other)
    assert (dict(one.task_kwargs), one.lock, one.queueing_lock) == (
        {"to": "a@b.c", "n": 1},
        "user-1",
        "send-1",
    )
    assert dict(one.headers) == {"trace": "t-1"}
    assert dict(other.headers) == {"trace": "t-2"}


@pytest.mark.parametrize(
    "args",
    [
        pytest.param({}, id="empty"),
        pytest.param(
            {"a": 1, "b": "two", "c": None, "d": True, "e": False}, id="scalars"
        ),
        pytest.param(
            {"nested": {"list": [1, [2, {"x": "y"}]], "empty": {}}}, id="nested"
        ),
        pytest.param({"text": 'é中文🙂 "quotes" \\ \n\t'}, id="unicode"),
        pytest.param(
            {"big": 2**63 + 1, "neg": -(2**40), "float": 1.5, "zero": 0.0}, id="numbers"
        ),
        pytest.param({"": "empty key", "k" * 300: "long key"}, id="odd-keys"),
    ],
)
async def test_args_round_trip(jobs: JobFactory, args: dict[str, Any]) -> None:
    """Arguments read back equal the arguments deferred."""
    job_id = await jobs.defer(args=args)

    assert dict((await jobs.get(job_id)).task_kwargs) == args


async def test_queueing_lock_clash(connector: AsyncConnector, jobs: JobFactory) -> None:
    """A queueing lock held by a todo job refuses the whole new batch."""
    first = await jobs.defer(queueing_lock="ql")

    with pytest.raises(AlreadyEnqueued) as exc_info:
        await connector.job_defer_many(
            [to_defer(task_name="innocent"), to_defer(queueing_lock="ql")]
        )

    assert exc_info.value.queueing_lock == "ql"
    assert await all_jobs(connector) == [first]


@pytest.mark.parametrize(
    "lock",
    [
        pytest.param(None, id="no-lock"),
        pytest.param("L", id="with-lock"),
    ],
)
async def test_queueing_lock_clash_within_batch(
    connector: AsyncConnector, lock: str | None
) -> None:
    """Two jobs of one batch with the same queueing lock: nothing is written."""
    with pytest.raises(AlreadyEnqueued) as exc_info:
        await connector.job_defer_many(
            [
                to_defer(lock=lock),
                to_defer(queueing_lock="ql"),
                to_defer(queueing_lock="ql"),
            ]
        )

    assert exc_info.value.queueing_lock == "ql"
    assert await all_jobs(connector) == []


async def test_failed_batch_leaves_locks_alone(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """A refused batch does not disturb the lock line of jobs already there."""
    first = await jobs.defer(lock="L", queueing_lock="ql")

    with pytest.raises(AlreadyEnqueued):
        await connector.job_defer_many(
            [to_defer(lock="L", priority=9), to_defer(queueing_lock="ql")]
        )

    assert await jobs.fetch() == [first]


async def test_different_queueing_locks(jobs: JobFactory) -> None:
    """Jobs with different queueing locks, or none, do not clash."""
    ids = [
        await jobs.defer(queueing_lock="a"),
        await jobs.defer(queueing_lock="b"),
        await jobs.defer(),
        await jobs.defer(),
    ]

    assert await jobs.statuses(*ids) == [Status.TODO] * 4


async def test_queueing_lock_is_not_a_lock(jobs: JobFactory) -> None:
    """A queueing lock does not stop a second job once the first runs."""
    first = await jobs.defer(queueing_lock="ql")
    assert await jobs.fetch() == [first]

    second = await jobs.defer(queueing_lock="ql")

    assert await jobs.fetch() == [second]


@pytest.mark.parametrize(
    "status",
    [
        pytest.param(Status.DOING, id="doing"),
        pytest.param(Status.SUCCEEDED, id="succeeded"),
        pytest.param(Status.FAILED, id="failed"),
        pytest.param(Status.ABORTED, id="aborted"),
        pytest.param(Status.CANCELLED, id="cancelled"),
    ],
)
async def test_queueing_lock_freed(
    connector: AsyncConnector, jobs: JobFactory, status: Status
) -> None:
    """A queueing lock is free again once its job left todo."""
    first = await jobs.defer(queueing_lock="ql")
    if status is Status.CANCELLED:
        assert await connector.job_cancel(CancelParams(job_id=first))
    else:
        assert await jobs.fetch() == [first]
        if status is not Status.DOING:
            await jobs.finish(first, status)
    assert await jobs.statuses(first) == [status]

    second = await jobs.defer(queueing_lock="ql")

    assert await all_jobs(connector) == [first, second]


async def test_queueing_lock_held_by_retried_job(jobs: JobFactory) -> None:
    """A job back in todo for a retry holds its queueing lock again."""
    first = await jobs.defer(queueing_lock="ql")
    assert await jobs.fetch() == [first]
    await jobs.finish(first, Status.TODO)

    with pytest.raises(AlreadyEnqueued):
        await jobs.defer(queueing_lock="ql")
