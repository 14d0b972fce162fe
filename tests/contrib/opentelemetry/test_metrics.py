"""Metrics of deferred and run jobs, against a real PostgreSQL, on asyncio
and trio: counters by task, queue and status, the duration and queue wait
histograms, the queue depth gauge, with one worker or two."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

import anyio
import pytest
from opentelemetry.trace import SpanKind, StatusCode

import procrastinate_anyio as pa
from procrastinate_anyio import Status
from procrastinate_anyio.contrib.opentelemetry import (
    ATTRIBUTE_JOB_STATUS,
    ATTRIBUTE_TASK_NAME,
)
from procrastinate_anyio.contrib.opentelemetry._instrumentation import (
    queue_wait_seconds,
)
from tests.support import PG_HANG_GUARD_SECONDS

from .conftest import run_jobs, running_worker, until

if TYPE_CHECKING:
    from .conftest import Telemetry

pytestmark = pytest.mark.anyio

QUEUE = "messaging.destination.name"
DEFERRED = "procrastinate_anyio.jobs.deferred"
STARTED = "procrastinate_anyio.jobs.started"
FINISHED = "procrastinate_anyio.jobs.finished"
DURATION = "procrastinate_anyio.job.duration"
QUEUE_WAIT = "procrastinate_anyio.job.queue_wait"
DEPTH = "procrastinate_anyio.queue.depth"


async def test_counters_by_task_queue_and_status(
    app: pa.App, telemetry: Telemetry
) -> None:
    """Jobs deferred and started are counted by queue and task, jobs
    finished by status too; every attempt has a duration and a wait."""
    telemetry.instrument(app)
    attempts: list[int] = []

    @app.task(queue="a", name="ok")
    async def ok() -> None:
        pass

    @app.task(queue="b", name="bad")
    def bad() -> None:
        raise KeyError("nope")

    @app.task(queue="b", name="flaky", retry=1)
    async def flaky() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("once")

    ids = [
        *await ok.batch_defer_async({}, {}),
        await bad.defer_async(),
        await flaky.defer_async(),
    ]
    jobs = await run_jobs(app, *ids)

    assert [job.status for job in jobs] == [Status.SUCCEEDED] * 2 + [
        Status.FAILED,
        Status.SUCCEEDED,
    ]
    assert telemetry.values(DEFERRED, QUEUE, ATTRIBUTE_TASK_NAME) == {
        ("a", "ok"): 2,
        ("b", "bad"): 1,
        ("b", "flaky"): 1,
    }
    assert telemetry.values(STARTED, QUEUE, ATTRIBUTE_TASK_NAME) == {
        ("a", "ok"): 2,
        ("b", "bad"): 1,
        ("b", "flaky"): 2,
    }
    by_status = (QUEUE, ATTRIBUTE_TASK_NAME, ATTRIBUTE_JOB_STATUS, "error.type")
    assert telemetry.values(FINISHED, *by_status) == {
        ("a", "ok", "succeeded", None): 2,
        ("b", "bad", "failed", "KeyError"): 1,
        ("b", "flaky", "retried", "ValueError"): 1,
        ("b", "flaky", "succeeded", None): 1,
    }
    assert telemetry.values(DURATION, *by_status) == telemetry.values(
        FINISHED, *by_status
    )
    assert telemetry.values(QUEUE_WAIT, QUEUE, ATTRIBUTE_TASK_NAME) == {
        ("a", "ok"): 2,
        ("b", "bad"): 1,
        ("b", "flaky"): 2,
    }
    for point in telemetry.points(QUEUE_WAIT) + telemetry.points(DURATION):
        assert point.min >= 0
        assert point.explicit_bounds[0] == 0.005  # seconds, not milliseconds


async def test_timeout_and_abort(app: pa.App, telemetry: Telemetry) -> None:
    """A job past its timeout fails with a TimeoutError (span ERROR); an
    aborted job ends ``aborted`` with no error."""
    telemetry.instrument(app)
    started = anyio.Event()

    @app.task(name="slow", timeout=0.05)
    async def slow() -> None:
        await anyio.sleep_forever()

    @app.task(name="stoppable")
    async def stoppable() -> None:
        started.set()
        await anyio.sleep_forever()

    slow_id = await slow.defer_async()
    stoppable_id = await stoppable.defer_async()
    async with running_worker(app, concurrency=2):
        await started.wait()
        assert await app.job_manager.cancel_job_by_id_async(stoppable_id, abort=True)
        jobs = [
            await app.job_manager.wait_for_job_async(job_id)
            for job_id in (slow_id, stoppable_id)
        ]

    assert [job.status for job in jobs] == [Status.FAILED, Status.ABORTED]
    assert telemetry.values(
        FINISHED, ATTRIBUTE_TASK_NAME, ATTRIBUTE_JOB_STATUS, "error.type"
    ) == {("slow", "failed", "TimeoutError"): 1, ("stoppable", "aborted", None): 1}
    runs = {
        (s.attributes or {})[ATTRIBUTE_TASK_NAME]: s.status.status_code
        for s in telemetry.spans()
        if s.kind is SpanKind.CONSUMER
    }
    assert runs == {"slow": StatusCode.ERROR, "stoppable": StatusCode.UNSET}


async def test_queue_depth_read_by_the_worker(
    app: pa.App, telemetry: Telemetry
) -> None:
    """Each worker refreshes the queue depths every ``queue_depth_interval``
    seconds; the gauge reports todo and doing jobs per queue, and nothing
    once no worker keeps it fresh."""
    telemetry.instrument(app, queue_depth_interval=0.05)

    @app.task(queue="waiting")
    async def later() -> None:
        pass

    assert telemetry.values(DEPTH, QUEUE, ATTRIBUTE_JOB_STATUS) == {}
    await later.batch_defer_async({}, {}, {})
    # The worker does not take that queue's jobs: it only counts them.
    async with running_worker(app, queues=["elsewhere"]):
        await until(
            lambda: (
                telemetry.values(DEPTH, QUEUE, ATTRIBUTE_JOB_STATUS)
                == {("waiting", "todo"): 3, ("waiting", "doing"): 0}
            )
        )
        await later.defer_async()
        await until(
            lambda: (
                telemetry.values(DEPTH, QUEUE, ATTRIBUTE_JOB_STATUS).get(
                    ("waiting", "todo")
                )
                == 4
            )
        )

    assert telemetry.values(DEPTH, QUEUE, ATTRIBUTE_JOB_STATUS) == {}


async def test_queue_depth_refreshed_by_hand(app: pa.App, telemetry: Telemetry) -> None:
    """``refresh_depth()`` reads the depths once, for a process that runs no
    worker."""
    instrumentation = telemetry.instrument(app)

    @app.task(queue="q1")
    async def one() -> None:
        pass

    await one.batch_defer_async({}, {})
    await instrumentation.refresh_depth()

    assert telemetry.values(DEPTH, QUEUE, ATTRIBUTE_JOB_STATUS) == {
        ("q1", "todo"): 2,
        ("q1", "doing"): 0,
    }


async def test_no_queue_depth_gauge(app: pa.App, telemetry: Telemetry) -> None:
    """``queue_depth_interval=None``: no gauge, and no worker service."""
    telemetry.instrument(app, queue_depth_interval=None)

    assert app._hooks.worker_services == []
    assert telemetry.points(DEPTH) == []


async def test_two_workers(app: pa.App, telemetry: Telemetry) -> None:
    """Two workers of one instrumented app: each job is counted once, and
    each run's span names the worker that ran it."""
    telemetry.instrument(app)
    both_running = anyio.Event()
    running = []

    @app.task(name="pair")
    async def pair() -> None:
        running.append(1)
        if len(running) == 2:
            both_running.set()
        # Each worker (concurrency 1) holds one job until the other has one.
        await both_running.wait()

    ids = await pair.batch_defer_async({}, {})
    with anyio.fail_after(PG_HANG_GUARD_SECONDS):
        async with (
            running_worker(app, name="w1", concurrency=1),
            running_worker(app, name="w2", concurrency=1),
        ):
            jobs = [await app.job_manager.wait_for_job_async(i) for i in ids]

    assert [job.status for job in jobs] == [Status.SUCCEEDED] * 2
    assert telemetry.values(FINISHED, ATTRIBUTE_JOB_STATUS) == {("succeeded",): 2}
    clients = sorted(
        str((s.attributes or {})["messaging.client.id"])
        for s in telemetry.spans()
        if s.kind is SpanKind.CONSUMER
    )
    assert clients == ["w1", "w2"]


def test_queue_wait_seconds() -> None:
    """The wait starts when the job was deferred or, if later, became due;
    it is never negative, and unknown without both times."""
    t0 = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    second = datetime.timedelta(seconds=1)

    def job(
        created_at: datetime.datetime | None = None,
        scheduled_at: datetime.datetime | None = None,
        started_at: datetime.datetime | None = None,
    ) -> pa.Job:
        return pa.Job(
            id=1,
            queue="q",
            task_name="t",
            created_at=created_at,
            scheduled_at=scheduled_at,
            started_at=started_at,
        )

    assert queue_wait_seconds(job(created_at=t0, started_at=t0 + 3 * second)) == 3.0
    assert (
        queue_wait_seconds(
            job(created_at=t0, scheduled_at=t0 + second, started_at=t0 + 3 * second)
        )
        == 2.0
    )
    assert (
        queue_wait_seconds(
            job(created_at=t0, scheduled_at=t0 - second, started_at=t0 + second)
        )
        == 1.0
    )
    assert queue_wait_seconds(job(created_at=t0 + second, started_at=t0)) == 0.0
    assert queue_wait_seconds(job(created_at=t0)) is None
