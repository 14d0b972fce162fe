"""Tests of the public fake clock, and of the places that read the injected
clock instead of the real time."""

from __future__ import annotations

import datetime

import anyio
import pytest

import procrastinate_anyio as pa
from procrastinate_anyio import RetryStrategy, Status
from procrastinate_anyio._context import AbortSignal
from procrastinate_anyio.connectors import FetchParams
from procrastinate_anyio.testing import FakeClock, InMemoryConnector
from procrastinate_anyio.worker._runner import run_job
from procrastinate_anyio.worker._slots import RunningJob
from tests.support import HANG_GUARD_SECONDS

T0 = datetime.datetime(2030, 6, 1, 12, 0, tzinfo=datetime.timezone.utc)


class TestFakeClock:
    def test_stands_still_until_moved(self) -> None:
        """now() and calling the clock give the same time until advance()."""
        clock = FakeClock(T0)

        assert (clock.now(), clock()) == (T0, T0)
        assert clock.advance(minutes=5) == T0 + datetime.timedelta(minutes=5)
        assert clock.advance(datetime.timedelta(seconds=1)) == T0 + datetime.timedelta(
            minutes=5, seconds=1
        )

    def test_set_jumps_both_ways(self) -> None:
        """set() may go back: a test may need to."""
        clock = FakeClock(T0)
        clock.set(T0 - datetime.timedelta(days=1))

        assert clock.now() == T0 - datetime.timedelta(days=1)

    def test_starts_at_the_real_time(self) -> None:
        """Without a start, the clock starts at the real time."""
        before = datetime.datetime.now(datetime.timezone.utc)

        assert (
            before <= FakeClock().now() <= datetime.datetime.now(datetime.timezone.utc)
        )

    @pytest.mark.parametrize(
        ("call", "message"),
        [
            pytest.param(
                lambda: FakeClock(datetime.datetime(2030, 1, 1)), "aware", id="naive"
            ),
            pytest.param(
                lambda: FakeClock(T0).advance(seconds=-1), "forward", id="back"
            ),
            pytest.param(
                lambda: FakeClock(T0).advance(datetime.timedelta(1), seconds=1),
                "not both",
                id="both",
            ),
            pytest.param(
                lambda: FakeClock(T0).set(datetime.datetime(2030, 1, 1)),
                "aware",
                id="naive-set",
            ),
        ],
    )
    def test_bad_input(self, call: object, message: str) -> None:
        """Naive times, backward moves and mixed forms are refused."""
        with pytest.raises(ValueError, match=message):
            call()  # type: ignore[operator]  # the parametrised lambdas


@pytest.mark.anyio
async def test_scheduled_job_becomes_due_as_the_clock_moves() -> None:
    """The in-memory connector reads the fake clock: a job scheduled in a
    minute is claimed only once the clock has moved a minute."""
    clock = FakeClock(T0)
    app = pa.App(connector=InMemoryConnector(clock=clock))

    @app.task(name="later")
    def later() -> None: ...

    await later.configure(schedule_at=T0 + datetime.timedelta(minutes=1)).defer_async()
    worker_id = await app.connector.worker_register("w", None)
    params = FetchParams(worker_id=worker_id, queues=None, limit=1)

    assert await app.connector.job_fetch_many(params) == []
    clock.advance(minutes=1)
    assert [job.task_name for job in await app.connector.job_fetch_many(params)] == [
        "later"
    ]


@pytest.mark.anyio
async def test_retry_delay_counts_from_the_injected_clock() -> None:
    """A failed job's retry is due ``wait`` seconds after the clock's now."""
    clock = FakeClock(T0)
    app = pa.App(connector=InMemoryConnector(clock=clock))

    @app.task(name="fails", retry=RetryStrategy(max_attempts=3, wait=10))
    def fails() -> None:
        raise RuntimeError("boom")

    job = pa.Job(
        id=1, queue="default", task_name="fails", status=Status.DOING, attempts=1
    )
    running = RunningJob(job=job, abort_signal=AbortSignal())
    with anyio.fail_after(HANG_GUARD_SECONDS), anyio.CancelScope() as scope:
        outcome = await run_job(
            app=app,
            running=running,
            scope=scope,
            worker_name="w",
            worker_queues=None,
            additional_context={},
            clock=clock,
        )

    assert (outcome.status, outcome.retry_at) == (
        Status.TODO,
        T0 + datetime.timedelta(seconds=10),
    )
