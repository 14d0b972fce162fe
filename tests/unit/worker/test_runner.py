"""Tests of run_job: how each way a job can end becomes a JobOutcome."""

from __future__ import annotations

import datetime
import threading
import time
from typing import Any

import anyio
import attrs
import pytest

import procrastinate_anyio as pa
from procrastinate_anyio import Job, JobContext, Status
from procrastinate_anyio._context import AbortSignal, StopReason
from procrastinate_anyio.connectors import JobOutcome
from procrastinate_anyio.worker._runner import Attempt, error_from_exception, run_job
from procrastinate_anyio.worker._slots import RunningJob
from tests.support import HANG_GUARD_SECONDS

pytestmark = pytest.mark.anyio


class CustomError(Exception):
    pass


@pytest.fixture
def app() -> pa.App:
    return pa.App(connector=pa.InMemoryConnector())


def running_job(
    task_name: str,
    *,
    timeout: float | None = None,
    started_at: datetime.datetime | None = None,
    **kwargs: Any,
) -> RunningJob:
    job = Job(
        id=1,
        queue="default",
        task_name=task_name,
        task_kwargs=kwargs,
        status=Status.DOING,
        attempts=0,  # the first run, as claimed
        lock="the-lock",
        started_at=started_at,
    )
    # As the fetcher makes it: the timeout counts from the job's start.
    return RunningJob(
        job=job,
        abort_signal=AbortSignal(),
        timeout=timeout or None,
    )


async def run(app: pa.App, running: RunningJob) -> JobOutcome:
    # The job's scope, as a slot task enters it around its jobs.
    with anyio.fail_after(HANG_GUARD_SECONDS), anyio.CancelScope() as scope:
        outcome = await run_job(
            app=app,
            running=running,
            scope=scope,
            worker_name="w",
            worker_queues=None,
            additional_context={},
        )
    return outcome


async def run_and_stop(
    app: pa.App, running: RunningJob, started: anyio.Event, reason: StopReason
) -> JobOutcome:
    """Run the job, and stop it for ``reason`` once it has started."""
    outcome: list[JobOutcome] = []

    async def runner() -> None:
        outcome.append(await run(app, running))

    async with anyio.create_task_group() as tg:
        tg.start_soon(runner)
        await started.wait()
        running.stop(reason)
    return outcome[0]


async def test_success_carries_the_result_and_the_lock(app):
    """A returned value is the result; the outcome frees the job's lock."""

    @app.task(name="add")
    async def add(a: int, b: int) -> int:
        return a + b

    outcome = await run(app, running_job("add", a=1, b=2))
    assert outcome == JobOutcome(
        job_id=1, status=Status.SUCCEEDED, result=3, lock="the-lock"
    )


@pytest.mark.parametrize("delete_succeeded", [False, True])
async def test_a_success_of_an_attempt_is_its_final_outcome(app, delete_succeeded):
    """With the attempt given, a success is built once, as the worker would
    have made it of the plain outcome (of_attempt)."""

    @app.task(name="add")
    async def add(a: int, b: int) -> int:
        return a + b

    started_at = datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc)
    plain, of_attempt = (
        running_job("add", a=1, b=2, started_at=started_at) for _ in range(2)
    )
    expected = (await run(app, plain)).of_attempt(
        worker_id=7, started_at=started_at, delete_job=delete_succeeded
    )
    with anyio.fail_after(HANG_GUARD_SECONDS), anyio.CancelScope() as scope:
        outcome = await run_job(
            app=app,
            running=of_attempt,
            scope=scope,
            worker_name="w",
            worker_queues=None,
            additional_context={},
            attempt=Attempt(worker_id=7, delete_succeeded=delete_succeeded),
        )
    assert outcome == expected


async def test_exception_becomes_a_job_error(app):
    """A raised exception fails the job with its qualified type, message, traceback."""

    @app.task(name="boom")
    async def boom() -> None:
        raise CustomError("it broke")

    outcome = await run(app, running_job("boom"))
    assert outcome.status is Status.FAILED
    assert outcome.error is not None
    assert outcome.error.type == f"{__name__}.CustomError"
    assert outcome.error.message == "it broke"
    assert 'raise CustomError("it broke")' in (outcome.error.traceback or "")


def test_builtin_exception_types_are_unqualified():
    """Builtin exceptions are named without their module."""
    assert error_from_exception(KeyError("k")).type == "KeyError"


@pytest.mark.parametrize(
    ("retry", "attempts", "status"),
    [
        pytest.param(1, 0, Status.TODO, id="retry-left"),
        pytest.param(
            pa.RetryStrategy(max_attempts=1), 1, Status.FAILED, id="exhausted"
        ),
    ],
)
async def test_retry_strategy_decides(app, retry, attempts, status):
    """A failure goes back to todo while the strategy allows it, then fails."""

    @app.task(name="flaky", retry=retry)
    async def flaky() -> None:
        raise ValueError("again")

    running = running_job("flaky")
    running.job = attrs.evolve(running.job, attempts=attempts)
    outcome = await run(app, running)
    assert outcome.status is status
    assert outcome.error is not None
    assert outcome.error.type == "ValueError"
    assert (outcome.retry_at is not None) is (status is Status.TODO)


async def test_task_not_found(app):
    """An unknown task fails the job with TaskNotFound."""
    outcome = await run(app, running_job("nobody.knows"))
    assert outcome.status is Status.FAILED
    assert outcome.error is not None
    assert outcome.error.type.endswith("TaskNotFound")


async def test_non_json_result_fails(app):
    """A return value that is not JSON fails the job with a clear message."""

    @app.task(name="odd")
    async def odd() -> set[int]:
        return {1}

    outcome = await run(app, running_job("odd"))
    assert outcome.status is Status.FAILED
    assert outcome.error is not None
    assert "'odd' is not JSON-serialisable" in outcome.error.message


@pytest.mark.parametrize("retry", [False, True])
async def test_abort_is_never_retried(app, retry):
    """An aborted job ends aborted, even when its task retries."""
    started = anyio.Event()

    @app.task(name="forever", retry=retry)
    async def forever() -> None:
        started.set()
        await anyio.sleep_forever()

    running = running_job("forever")
    outcome = await run_and_stop(app, running, started, StopReason.ABORT)
    assert outcome == JobOutcome(job_id=1, status=Status.ABORTED, lock="the-lock")


@pytest.mark.parametrize(
    ("retry", "status"),
    [
        pytest.param(False, Status.ABORTED, id="aborted"),
        pytest.param(True, Status.TODO, id="retry-todo"),
    ],
)
async def test_shutdown_interrupts(app, retry, status):
    """A job cancelled by shutdown is aborted, or back to todo if it retries."""
    started = anyio.Event()

    @app.task(name="forever", retry=retry)
    async def forever() -> None:
        started.set()
        await anyio.sleep_forever()

    outcome = await run_and_stop(
        app, running_job("forever"), started, StopReason.SHUTDOWN
    )
    assert outcome.status is status
    assert outcome.error is not None
    assert outcome.error.type.endswith("JobInterrupted")


@pytest.mark.parametrize(
    ("retry", "status"),
    [
        pytest.param(False, Status.ABORTED, id="aborted"),
        pytest.param(True, Status.TODO, id="retry-todo"),
    ],
)
async def test_sync_task_returning_on_shutdown_is_interrupted(app, retry, status):
    """A sync task that returns because of a shutdown did not finish: interrupted."""
    started = threading.Event()

    @app.task(name="polling", pass_context=True, retry=retry)
    def polling(context: JobContext) -> str:
        started.set()
        while not context.should_abort():
            time.sleep(0.001)  # the task's own polling, as users write it
        return "stopped early"

    running = running_job("polling")
    outcome: list[JobOutcome] = []

    async def runner() -> None:
        outcome.append(await run(app, running))

    async with anyio.create_task_group() as tg:
        tg.start_soon(runner)
        await anyio.to_thread.run_sync(started.wait)
        running.stop(StopReason.SHUTDOWN)
    assert outcome[0].status is status
    assert outcome[0].error is not None
    assert outcome[0].error.type.endswith("JobInterrupted")


async def test_timeout_fails_with_timeout_error(app):
    """The job scope's deadline fails the job with a TimeoutError."""

    @app.task(name="slow", timeout=0.01)
    async def slow() -> None:
        await anyio.sleep_forever()

    outcome = await run(app, running_job("slow", timeout=0.01))
    assert outcome.status is Status.FAILED
    assert outcome.error is not None
    assert outcome.error.type == "TimeoutError"
    assert "timeout of 0.01 s" in outcome.error.message


async def test_sync_task_returning_past_its_timeout_fails(app):
    """A sync task that returns once should_abort() reports its timeout fails."""

    @app.task(name="slow", timeout=0.01, pass_context=True)
    def slow(context: JobContext) -> str:
        while not context.should_abort():
            time.sleep(0.001)  # the task's own polling, as users write it
        return "stopped early"

    outcome = await run(app, running_job("slow", timeout=0.01))
    assert outcome.status is Status.FAILED
    assert outcome.error is not None
    assert outcome.error.type == "TimeoutError"


async def test_sync_task_sees_the_abort(app):
    """A sync task learns of an abort from should_abort(); the job is aborted."""
    started = threading.Event()
    seen: list[str | None] = []

    @app.task(name="polling", pass_context=True)
    def polling(context: JobContext) -> str:
        started.set()
        while not context.should_abort():
            time.sleep(0.001)  # the task's own polling, as users write it
        seen.append(context.abort_signal.reason)
        return "returned anyway"

    running = running_job("polling")
    outcome: list[JobOutcome] = []

    async def runner() -> None:
        outcome.append(await run(app, running))

    async with anyio.create_task_group() as tg:
        tg.start_soon(runner)
        await anyio.to_thread.run_sync(started.wait)
        running.stop(StopReason.ABORT)
    assert seen == ["abort"]
    assert outcome[0].status is Status.ABORTED


async def test_outside_cancellation_propagates(app):
    """A cancellation from outside the job's scope is not turned into an outcome."""
    started = anyio.Event()

    @app.task(name="forever")
    async def forever() -> None:
        started.set()
        await anyio.sleep_forever()

    outcomes: list[JobOutcome] = []

    async def runner() -> None:
        outcomes.append(await run(app, running_job("forever")))

    async with anyio.create_task_group() as tg:
        tg.start_soon(runner)
        await started.wait()
        tg.cancel_scope.cancel()
    assert outcomes == []


async def test_first_stop_reason_wins():
    """A job stopped for several reasons remembers the first."""
    job = Job(id=1, queue="default", task_name="t")
    scope = anyio.CancelScope()
    running = RunningJob(job=job, abort_signal=AbortSignal())
    running.start(scope)
    running.stop(StopReason.ABORT)
    running.stop(StopReason.SHUTDOWN)
    assert running.stop_reason is StopReason.ABORT
    assert scope.cancel_called
    assert running.abort_signal.reason == "abort"
