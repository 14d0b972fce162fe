"""Conformance: job headers, written by ``job_defer_many`` and read back by
every operation that returns jobs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from procrastinate_anyio import Status
from procrastinate_anyio.connectors import FetchParams, JobFilter, RetryParams
from procrastinate_anyio.connectors.postgres import _ops

from .conftest import WORKER_ID, to_defer

if TYPE_CHECKING:
    from procrastinate_anyio.connectors import AsyncConnector

    from .conftest import JobFactory, SyncDriver, SyncJobFactory

pytestmark = pytest.mark.anyio

HEADERS = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


async def test_no_headers(jobs: JobFactory) -> None:
    """A job deferred without headers reads back with empty headers."""
    job_id = await jobs.defer()

    assert dict((await jobs.get(job_id)).headers) == {}


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(HEADERS, id="traceparent"),
        pytest.param({"a": "", "é中文🙂": 'quotes " \\ \n'}, id="odd-text"),
    ],
)
async def test_headers_round_trip(jobs: JobFactory, headers: dict[str, str]) -> None:
    """Headers read back equal the headers deferred, read-only."""
    job_id = await jobs.defer(headers=headers)

    job = await jobs.get(job_id)
    assert dict(job.headers) == headers
    with pytest.raises(TypeError):
        job.headers["more"] = "no"  # type: ignore[index]  # the point of the test


async def test_headers_per_job_in_a_batch(connector: AsyncConnector) -> None:
    """In one batch, each job keeps its own headers (or none)."""
    ids = await connector.job_defer_many(
        [
            to_defer(headers={"n": "1"}),
            to_defer(),
            to_defer(headers={"n": "3"}, lock="L"),
        ]
    )

    jobs = await connector.job_list(JobFilter())
    assert [(job.id, dict(job.headers)) for job in jobs] == [
        (ids[0], {"n": "1"}),
        (ids[1], {}),
        (ids[2], {"n": "3"}),
    ]


async def test_claim_returns_headers(connector: AsyncConnector) -> None:
    """The claim (plain and by queue) returns each job with its headers."""
    await connector.job_defer_many(
        [to_defer(queue="a", headers={"q": "a"}), to_defer(queue="b")]
    )

    (first,) = await connector.job_fetch_many(
        FetchParams(worker_id=WORKER_ID, queues=["a"], limit=5)
    )
    (second,) = await connector.job_fetch_many(
        FetchParams(worker_id=WORKER_ID, queues=None, limit=5)
    )

    assert (dict(first.headers), dict(second.headers)) == ({"q": "a"}, {})


async def test_headers_kept_on_retries(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """A job retried by its worker, then by hand, keeps its headers."""
    job_id = await jobs.defer(headers=HEADERS)
    assert await jobs.fetch() == [job_id]
    await jobs.finish(job_id, Status.TODO)
    (claimed,) = await connector.job_fetch_many(
        FetchParams(worker_id=WORKER_ID, queues=None, limit=5)
    )
    assert dict(claimed.headers) == HEADERS
    await jobs.finish(job_id, Status.FAILED)

    assert await connector.job_retry(RetryParams(job_id=job_id))

    assert dict((await jobs.get(job_id)).headers) == HEADERS


def test_sync_defer_headers(sync_driver: SyncDriver, sync_jobs: SyncJobFactory) -> None:
    """The sync connector writes and reads headers like the async one."""
    job_id = sync_jobs.defer(headers=HEADERS)
    other = sync_jobs.defer()

    assert dict(sync_jobs.get(job_id).headers) == HEADERS
    assert dict(sync_jobs.get(other).headers) == {}
    listed = sync_driver.connector.job_list(JobFilter(id=job_id))
    assert [dict(job.headers) for job in listed] == [HEADERS]


def statements(op: Any) -> list[Any]:
    """The statements a PostgreSQL operation sends, answered with no rows."""
    sent = []
    try:
        statement = next(op)
        while True:
            sent.append(statement)
            statement = op.send([])
    except StopIteration:
        return sent


def test_postgres_defer_costs_the_same_without_headers() -> None:
    """A PostgreSQL defer is one statement with or without headers, and the
    document of a job without headers has no headers key (NULL column)."""
    plain = statements(_ops.job_defer_many([to_defer(), to_defer()]))
    with_headers = statements(_ops.job_defer_many([to_defer(headers=HEADERS)]))

    assert (
        [s.name for s in plain] == [s.name for s in with_headers] == ["job_defer_many"]
    )
    assert "headers" not in plain[0].params["jobs"]
    assert json.loads(with_headers[0].params["jobs"])[0]["headers"] == HEADERS
