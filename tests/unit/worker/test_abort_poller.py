"""Tests of the abort poller: one pass stops the running jobs whose abort was
requested, and survives a database error."""

from __future__ import annotations

from typing import Any

import pytest

from procrastinate_anyio import App, ConnectorException, InMemoryConnector, Job
from procrastinate_anyio._context import AbortSignal, StopReason
from procrastinate_anyio.connectors import CancelParams, FetchParams
from procrastinate_anyio.worker._abort_poller import AbortPoller, AbortPollResult
from procrastinate_anyio.worker._slots import RunningJob, Slots

pytestmark = pytest.mark.anyio


async def running_jobs(app: App, count: int) -> list[RunningJob]:
    """``count`` jobs claimed by a worker, as the fetcher hands them over."""

    @app.task(name="work")
    async def work() -> None: ...

    await work.batch_defer_async(*[{}] * count)
    worker_id = await app.connector.worker_register("w", None)
    jobs: list[Job] = await app.connector.job_fetch_many(
        FetchParams(worker_id=worker_id, queues=None, limit=count)
    )
    return [RunningJob(job=job, abort_signal=AbortSignal()) for job in jobs]


async def test_stops_the_jobs_whose_abort_was_requested(app: App) -> None:
    """Only the running jobs with an abort request are stopped, for ABORT."""
    slots = Slots(3, refill_threshold=1)
    first, second, third = await running_jobs(app, 3)
    for running in (first, second, third):
        slots.add(running)
    await app.connector.job_cancel(CancelParams(job_id=second.job.id, abort=True))

    result = await AbortPoller(app.connector, slots, interval=5).run_once()

    assert result == AbortPollResult(polled=3, aborted=(second.job.id,))
    assert [r.stop_reason for r in (first, second, third)] == [
        None,
        StopReason.ABORT,
        None,
    ]


async def test_nothing_running_asks_nothing(connector: InMemoryConnector) -> None:
    """With no running job, a pass does not query the database."""

    async def unexpected(job_ids: Any) -> list[int]:
        raise AssertionError("queried")

    connector.job_abort_requested_many = unexpected  # type: ignore[method-assign]  # a spy

    result = await AbortPoller(
        connector, Slots(1, refill_threshold=1), interval=5
    ).run_once()

    assert result == AbortPollResult(polled=0)


async def test_database_error_is_logged(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    """A pass that cannot reach the database returns None, logs, stops nothing."""
    slots = Slots(1, refill_threshold=1)
    (running,) = await running_jobs(app, 1)
    slots.add(running)

    async def broken(job_ids: Any) -> list[int]:
        raise ConnectorException("database down")

    app.connector.job_abort_requested_many = broken  # type: ignore[method-assign]  # a fault

    assert await AbortPoller(app.connector, slots, interval=5).run_once() is None
    assert running.stop_reason is None
    assert [r.__dict__["action"] for r in caplog.records] == ["abort_poll_error"]


def test_interval_must_be_positive(connector: InMemoryConnector) -> None:
    """A zero interval is refused at construction."""
    with pytest.raises(ValueError, match="positive"):
        AbortPoller(connector, Slots(1, refill_threshold=1), interval=0)
