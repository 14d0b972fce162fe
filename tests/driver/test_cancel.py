"""Conformance: ``job_cancel`` and abort requests (effect on locks:
``test_lock.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from procrastinate_anyio import Status
from procrastinate_anyio.connectors import CancelParams

if TYPE_CHECKING:
    from procrastinate_anyio.connectors import AsyncConnector

    from .conftest import JobFactory

pytestmark = pytest.mark.anyio


async def test_cancel_todo(connector: AsyncConnector, jobs: JobFactory) -> None:
    """A todo job is cancelled, finished, and never fetched."""
    job_id = await jobs.defer()

    assert await connector.job_cancel(CancelParams(job_id=job_id)) is True

    job = await jobs.get(job_id)
    assert (job.status, job.abort_requested) == (Status.CANCELLED, False)
    assert job.finished_at is not None
    assert await jobs.fetch() == []


async def test_cancel_twice(connector: AsyncConnector, jobs: JobFactory) -> None:
    """Cancelling a cancelled job does nothing and says so."""
    job_id = await jobs.defer()
    assert await connector.job_cancel(CancelParams(job_id=job_id))
    finished_at = (await jobs.get(job_id)).finished_at

    assert await connector.job_cancel(CancelParams(job_id=job_id, abort=True)) is False

    assert (await jobs.get(job_id)).finished_at == finished_at


@pytest.mark.parametrize(
    "status",
    [
        pytest.param(Status.SUCCEEDED, id="succeeded"),
        pytest.param(Status.FAILED, id="failed"),
        pytest.param(Status.ABORTED, id="aborted"),
    ],
)
@pytest.mark.parametrize(
    "abort",
    [
        pytest.param(False, id="plain"),
        pytest.param(True, id="abort"),
    ],
)
async def test_cancel_finished(
    connector: AsyncConnector, jobs: JobFactory, status: Status, abort: bool
) -> None:
    """A finished job cannot be cancelled or aborted; it stays as it was."""
    job_id = await jobs.defer()
    await jobs.run(job_id, status)
    before = await jobs.get(job_id)

    assert await connector.job_cancel(CancelParams(job_id=job_id, abort=abort)) is False

    assert await jobs.get(job_id) == before


async def test_cancel_doing_without_abort(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """A doing job is not cancelled without ``abort``, nor asked to stop."""
    job_id = await jobs.defer()
    assert await jobs.fetch() == [job_id]

    assert await connector.job_cancel(CancelParams(job_id=job_id)) is False

    job = await jobs.get(job_id)
    assert (job.status, job.abort_requested) == (Status.DOING, False)


async def test_abort_doing(connector: AsyncConnector, jobs: JobFactory) -> None:
    """With ``abort``, a doing job keeps running with its abort requested."""
    job_id = await jobs.defer()
    other = await jobs.defer()
    assert await jobs.fetch() == [job_id, other]

    assert await connector.job_cancel(CancelParams(job_id=job_id, abort=True)) is True

    job = await jobs.get(job_id)
    assert (job.status, job.abort_requested) == (Status.DOING, True)
    assert await connector.job_abort_requested_many([job_id, other, 999_999]) == [
        job_id
    ]


async def test_abort_todo_cancels(connector: AsyncConnector, jobs: JobFactory) -> None:
    """With ``abort``, a todo job is simply cancelled."""
    job_id = await jobs.defer()

    assert await connector.job_cancel(CancelParams(job_id=job_id, abort=True)) is True

    job = await jobs.get(job_id)
    assert (job.status, job.abort_requested) == (Status.CANCELLED, False)


async def test_delete_todo(connector: AsyncConnector, jobs: JobFactory) -> None:
    """With ``delete_job``, a todo job is deleted instead of cancelled."""
    job_id = await jobs.defer()
    other = await jobs.defer()

    assert (
        await connector.job_cancel(CancelParams(job_id=job_id, delete_job=True)) is True
    )

    assert await connector.job_get(job_id) is None
    assert await jobs.statuses(other) == [Status.TODO]


@pytest.mark.parametrize(
    ("abort", "expected"),
    [
        pytest.param(False, False, id="plain"),
        pytest.param(True, True, id="abort"),
    ],
)
async def test_delete_doing(
    connector: AsyncConnector, jobs: JobFactory, abort: bool, expected: bool
) -> None:
    """``delete_job`` never deletes a doing job; ``abort`` still asks it to stop."""
    job_id = await jobs.defer()
    assert await jobs.fetch() == [job_id]

    params = CancelParams(job_id=job_id, abort=abort, delete_job=True)
    assert await connector.job_cancel(params) is expected

    job = await jobs.get(job_id)
    assert (job.status, job.abort_requested) == (Status.DOING, expected)


async def test_cancel_unknown(connector: AsyncConnector) -> None:
    """Cancelling a job that does not exist returns False."""
    for params in (
        CancelParams(job_id=424242),
        CancelParams(job_id=424242, abort=True, delete_job=True),
    ):
        assert await connector.job_cancel(params) is False


async def test_cancel_waiting_lock_job(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """Cancelling a job waiting behind its lock leaves the lock's order alone."""
    first = await jobs.defer(lock="L")
    second = await jobs.defer(lock="L")
    third = await jobs.defer(lock="L")

    assert await connector.job_cancel(CancelParams(job_id=second))

    assert await jobs.fetch() == [first]
    await jobs.finish(first)
    assert await jobs.fetch() == [third]
