"""Tests of the worker on the in-memory connector, on asyncio and trio.

Jobs tell the test where they are through events; a worker that misses a
wake-up or a cancellation hangs, and the ``fail_after`` hang guard turns
that into a failure. Timer logic (polling, heartbeat, listener backoff, the
graceful timeout) runs under Trio's ``MockClock``, where time is virtual.
"""

from __future__ import annotations

import datetime
import functools
import threading
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import pytest

import procrastinate_anyio as pa
from procrastinate_anyio import JobContext, RetryStrategy, Status
from procrastinate_anyio.worker._worker import Worker
from tests.support import HANG_GUARD_SECONDS, FakeClock, mock_clock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

pytestmark = pytest.mark.anyio


@pytest.fixture
def clock() -> FakeClock:
    """The in-memory connector's clock: real time, moved by ``offset``."""
    return FakeClock(real_time=True)


@pytest.fixture
def connector(clock: FakeClock) -> pa.InMemoryConnector:
    return pa.InMemoryConnector(clock=clock)


@pytest.fixture
def app(connector: pa.InMemoryConnector) -> pa.App:
    # A short graceful timeout keeps the hang guard effective: the guard's
    # cancellation is itself a graceful stop.
    defaults = {"install_signal_handlers": False, "shutdown_graceful_timeout": 2}
    return pa.App(connector=connector, worker_defaults=defaults)


def job(connector: pa.InMemoryConnector, job_id: int) -> pa.Job:
    found = connector.store.job_get(job_id)
    assert found is not None
    return found


def error_type(job: pa.Job) -> str:
    assert job.error is not None, f"job {job.id} has no error"
    return job.error.type


def forever_task(app: pa.App, **options: Any) -> tuple[pa.Task[[], Any], anyio.Event]:
    """A task whose jobs run until cancelled, and an event set when one starts."""
    started = anyio.Event()

    @app.task(name="forever", **options)
    async def forever() -> None:
        started.set()
        await anyio.sleep_forever()

    return forever, started


def statuses(connector: pa.InMemoryConnector) -> list[Status]:
    return [row.job.status for _, row in sorted(connector.store.rows.items())]


async def run_one_shot(app: pa.App, **options: Any) -> None:
    with anyio.fail_after(HANG_GUARD_SECONDS):
        await app.run_worker(wait=False, **options)


@asynccontextmanager
async def running_worker(
    app: pa.App, *, guard: float = HANG_GUARD_SECONDS, **options: Any
) -> AsyncIterator[Worker]:
    """A worker in the background; stopped (gracefully) when the block ends."""
    with anyio.fail_after(guard):
        async with anyio.create_task_group() as tg:
            worker = await tg.start(functools.partial(app.run_worker, **options))
            yield worker
            worker.stop()


class TestRunning:
    async def test_one_shot_runs_every_job_then_stops(self, app, connector):
        """With wait=False the worker runs what is there, stops, unregisters."""

        @app.task
        async def add(a: int, b: int) -> int:
            return a + b

        ids = await add.batch_defer_async({"a": 1, "b": 2}, {"a": 3, "b": 4})
        await run_one_shot(app)
        assert [job(connector, i).result for i in ids] == [3, 7]
        assert statuses(connector) == [Status.SUCCEEDED] * 2
        assert connector.store.workers == {}
        assert not connector.is_open  # run_worker closes what it opened

    async def test_leaves_an_open_connector_open(self, app, connector):
        """A connector the caller opened stays open."""
        await connector.open_async()
        await run_one_shot(app)
        assert connector.is_open

    async def test_concurrent_jobs_overlap_and_are_claimed_at_once(
        self, app, connector, monkeypatch
    ):
        """N jobs all start before any finishes, claimed in one statement."""
        n = 5
        started = 0
        all_started = anyio.Event()
        limits: list[int] = []
        fetch = connector.job_fetch_many

        async def recording_fetch(params):
            limits.append(params.limit)
            return await fetch(params)

        monkeypatch.setattr(connector, "job_fetch_many", recording_fetch)

        @app.task
        async def overlap() -> None:
            nonlocal started
            started += 1
            if started == n:
                all_started.set()
            await all_started.wait()

        await overlap.batch_defer_async(*[{}] * n)
        await run_one_shot(app, concurrency=n)
        assert statuses(connector) == [Status.SUCCEEDED] * n
        assert limits[0] == n

    async def test_sync_task_runs_in_a_thread(self, app, connector):
        """A sync task runs outside the event loop's thread."""

        @app.task(pass_context=True)
        def where(context: JobContext) -> list[Any]:
            return [threading.get_ident(), context.should_abort()]

        job_id = await where.defer_async()
        await run_one_shot(app)
        thread_id, should_abort = job(connector, job_id).result
        assert thread_id != threading.get_ident()
        assert should_abort is False

    async def test_pass_context(self, app, connector):
        """pass_context=True gives the task a JobContext of this job and worker."""

        @app.task(pass_context=True, queue="q")
        async def ctx(context: JobContext, x: int) -> list[Any]:
            queues = list(context.worker_queues or [])
            extra = context.additional_context["extra"]
            return [context.job.id, x, context.worker_name, queues, extra]

        job_id = await ctx.defer_async(x=1)
        await run_one_shot(app, name="w", queues=["q"], additional_context={"extra": 2})
        assert job(connector, job_id).result == [job_id, 1, "w", ["q"], 2]


class TestFailures:
    async def test_failures_are_stored_as_job_errors(self, app, connector):
        """Unknown task, exception, non-JSON result: failed, with type and message."""

        @app.task
        async def boom() -> None:
            raise ValueError("boom")

        @app.task
        async def odd() -> object:
            return object()

        unknown = await app.configure_task("nobody.knows").defer_async()
        raised, returned = await boom.defer_async(), await odd.defer_async()
        await run_one_shot(app)
        assert statuses(connector) == [Status.FAILED] * 3
        assert error_type(job(connector, unknown)).endswith("TaskNotFound")
        error = job(connector, raised).error
        assert error is not None
        assert (error.type, error.message) == ("ValueError", "boom")
        assert 'raise ValueError("boom")' in (error.traceback or "")
        error = job(connector, returned).error
        assert error is not None
        assert "not JSON-serialisable" in error.message

    async def test_retry_goes_back_to_todo_then_fails(self, app, connector, clock):
        """A retried job waits in todo until its retry time, then fails for good."""

        @app.task(retry=RetryStrategy(max_attempts=1, wait=3600))
        async def flaky() -> None:
            raise ValueError("again")

        job_id = await flaky.defer_async()
        await run_one_shot(app)
        retried = job(connector, job_id)
        assert (retried.status, retried.attempts) == (Status.TODO, 1)
        assert error_type(retried) == "ValueError"
        assert retried.scheduled_at is not None
        assert retried.scheduled_at > clock()

        clock.offset = datetime.timedelta(hours=2)
        await run_one_shot(app)
        failed = job(connector, job_id)
        assert (failed.status, failed.attempts) == (Status.FAILED, 2)

    @pytest.mark.parametrize(
        ("retry", "attempts"),
        [pytest.param(False, 1, id="no-retry"), pytest.param(1, 2, id="retry")],
    )
    async def test_async_timeout_fails(self, app, connector, retry, attempts):
        """An async job past its timeout is cancelled and fails (retried if allowed)."""

        @app.task(timeout=0.01, retry=retry)
        async def slow() -> None:
            await anyio.sleep_forever()

        job_id = await slow.defer_async()
        await run_one_shot(app)
        failed = job(connector, job_id)
        assert (failed.status, failed.attempts) == (Status.FAILED, attempts)
        assert error_type(failed) == "TimeoutError"

    async def test_timeout_applies_to_jobs_deferred_under_an_alias(
        self, app, connector
    ):
        """A job naming the task by an old alias still gets the task's timeout."""

        @app.task(name="new", aliases=["old"], timeout=0.01)
        async def slow() -> None:
            await anyio.sleep_forever()

        # As another code base (or an older release) would defer it.
        elsewhere = pa.App(connector=connector)
        job_id = await elsewhere.configure_task("old").defer_async()
        await run_one_shot(app)
        failed = job(connector, job_id)
        assert (failed.status, error_type(failed)) == (Status.FAILED, "TimeoutError")

    async def test_sync_timeout_sets_should_abort(self, app, connector):
        """A sync job past its timeout sees should_abort() and fails as a timeout."""
        seen: list[bool] = []

        @app.task(timeout=0.01, pass_context=True)
        def slow(context: JobContext) -> str:
            while not context.should_abort():
                time.sleep(0.001)  # the task's own polling, as users write it
            seen.append(True)
            return "stopped early"

        job_id = await slow.defer_async()
        await run_one_shot(app)
        assert seen == [True]
        failed = job(connector, job_id)
        assert (failed.status, error_type(failed)) == (Status.FAILED, "TimeoutError")


class TestAbort:
    @pytest.mark.parametrize("retry", [False, True])
    async def test_abort_async_job(self, app, connector, retry):
        """Aborting a running async job cancels it: aborted, never retried."""
        forever, started = forever_task(app, retry=retry)
        job_id = await forever.defer_async()
        async with running_worker(app):
            await started.wait()
            assert await app.job_manager.cancel_job_by_id_async(job_id, abort=True)
        aborted = job(connector, job_id)
        assert (aborted.status, aborted.attempts) == (Status.ABORTED, 1)
        assert aborted.error is None  # not JobInterrupted: the abort did it

    async def test_abort_sync_job(self, app, connector):
        """Aborting a running sync job makes should_abort() True; it ends aborted."""
        started = threading.Event()

        @app.task(pass_context=True)
        def polling(context: JobContext) -> None:
            started.set()
            while not context.should_abort():
                time.sleep(0.001)

        job_id = await polling.defer_async()
        async with running_worker(app):
            await anyio.to_thread.run_sync(started.wait)
            assert await app.job_manager.cancel_job_by_id_async(job_id, abort=True)
        aborted = job(connector, job_id)
        assert (aborted.status, aborted.error) == (Status.ABORTED, None)


class TestOneSlot:
    """A slot task runs job after job in one cancel scope, and a new one after
    a stop: what a stop does to one job, it does to no other."""

    async def test_jobs_after_an_abort_and_a_timeout_run_unharmed(self, app, connector):
        """One slot: an aborted job, a job past its timeout, then two that
        succeed, in that order."""
        forever, started = forever_task(app)
        done = anyio.Event()

        @app.task(name="slow", timeout=0.01)
        async def slow() -> None:
            await anyio.sleep_forever()

        @app.task(name="quick")
        async def quick(last: bool) -> str:
            if last:
                done.set()
            return "ok"

        aborted_id = await forever.defer_async()
        slow_id = await slow.defer_async()
        first_id = await quick.defer_async(last=False)
        last_id = await quick.defer_async(last=True)
        async with running_worker(app, concurrency=1):
            await started.wait()
            assert await app.job_manager.cancel_job_by_id_async(aborted_id, abort=True)
            await done.wait()
        assert [job(connector, i).status for i in (aborted_id, slow_id)] == [
            Status.ABORTED,
            Status.FAILED,
        ]
        assert error_type(job(connector, slow_id)) == "TimeoutError"
        assert [job(connector, i).result for i in (first_id, last_id)] == ["ok"] * 2

    @pytest.mark.parametrize("cleanup_fails", [False, True])
    async def test_abort_of_a_job_running_a_task_group(
        self, app, connector, cleanup_fails
    ):
        """A job whose own task group the abort cancels (its child failing on
        the way out, or not) ends aborted, and the worker goes on."""
        started, done = anyio.Event(), anyio.Event()

        async def child() -> None:
            try:
                await anyio.sleep_forever()
            except anyio.get_cancelled_exc_class():
                if cleanup_fails:
                    raise ValueError("cleanup failed") from None
                raise

        @app.task(name="grouped")
        async def grouped() -> None:
            async with anyio.create_task_group() as tg:
                tg.start_soon(child)
                started.set()
                await anyio.sleep_forever()

        @app.task(name="after")
        async def after() -> None:
            done.set()

        grouped_id = await grouped.defer_async()
        after_id = await after.defer_async()
        async with running_worker(app, concurrency=1):
            await started.wait()
            assert await app.job_manager.cancel_job_by_id_async(grouped_id, abort=True)
            await done.wait()
        assert job(connector, grouped_id).status is Status.ABORTED
        assert job(connector, after_id).status is Status.SUCCEEDED

    async def test_a_job_that_swallows_its_abort_ends_aborted(self, app, connector):
        """A job that catches its cancellation and returns is still aborted,
        and the next job in its slot is not cancelled."""
        started, done = anyio.Event(), anyio.Event()

        @app.task(name="stubborn")
        async def stubborn() -> str:
            started.set()
            try:
                await anyio.sleep_forever()
            except anyio.get_cancelled_exc_class():
                pass
            return "swallowed"

        @app.task(name="after")
        async def after() -> None:
            await anyio.lowlevel.checkpoint()  # a cancelled scope would raise here
            done.set()

        stubborn_id = await stubborn.defer_async()
        after_id = await after.defer_async()
        async with running_worker(app, concurrency=1):
            await started.wait()
            assert await app.job_manager.cancel_job_by_id_async(stubborn_id, abort=True)
            await done.wait()
        assert job(connector, stubborn_id).status is Status.ABORTED
        assert job(connector, after_id).status is Status.SUCCEEDED


class TestShutdown:
    async def test_cancelling_the_enclosing_scope_stops_gracefully(
        self, app, connector
    ):
        """tg.start returns the Worker; a cancel lets the running job finish."""
        started, release = anyio.Event(), anyio.Event()
        seen: dict[str, Any] = {}

        @app.task
        async def busy() -> str:
            started.set()
            await release.wait()
            return "done"

        async def release_once_blocked(worker: Worker) -> None:
            await anyio.wait_all_tasks_blocked()
            seen["stopping"] = worker.statistics().stopping
            seen["status"] = job(connector, job_id).status
            release.set()

        job_id = await busy.defer_async()
        with anyio.fail_after(HANG_GUARD_SECONDS):
            async with (
                anyio.create_task_group() as outer,
                anyio.create_task_group() as tg,
            ):
                worker = await tg.start(
                    functools.partial(app.run_worker, shutdown_graceful_timeout=10)
                )
                assert isinstance(worker, Worker)
                await started.wait()
                outer.start_soon(release_once_blocked, worker)
                tg.cancel_scope.cancel()
        assert seen == {"stopping": True, "status": Status.DOING}
        assert job(connector, job_id).status is Status.SUCCEEDED
        assert connector.store.workers == {}

    @pytest.mark.parametrize(
        ("retry", "status"),
        [
            pytest.param(False, Status.ABORTED, id="aborted"),
            pytest.param(True, Status.TODO, id="retry-todo"),
        ],
    )
    async def test_graceful_timeout_cancels_running_jobs(
        self, app, connector, retry, status
    ):
        """Past shutdown_graceful_timeout a job is cancelled: aborted, or todo."""
        forever, started = forever_task(app, retry=retry)
        job_id = await forever.defer_async()
        async with running_worker(app, shutdown_graceful_timeout=0.01):
            await started.wait()
        interrupted = job(connector, job_id)
        assert interrupted.status is status
        assert error_type(interrupted).endswith("JobInterrupted")

    async def test_stop_now_cancels_at_once(self, app, connector):
        """stop(now=True) cancels running jobs without waiting (no timeout set)."""
        forever, started = forever_task(app)
        job_id = await forever.defer_async()
        async with running_worker(app, shutdown_graceful_timeout=None) as worker:
            await started.wait()
            worker.stop()
            await anyio.wait_all_tasks_blocked()
            assert job(connector, job_id).status is Status.DOING
            worker.stop(now=True)
        assert job(connector, job_id).status is Status.ABORTED
        assert connector.store.workers == {}

    @mock_clock()
    async def test_graceful_timeout_is_honoured(self, app, connector):
        """Jobs ending within the graceful timeout succeed; the others are aborted."""
        started = 0
        all_started = anyio.Event()

        @app.task
        async def nap(seconds: float) -> None:
            nonlocal started
            started += 1
            if started == 2:
                all_started.set()
            await anyio.sleep(seconds)

        short, long = await nap.batch_defer_async({"seconds": 29}, {"seconds": 31})
        async with running_worker(
            app, guard=100, concurrency=2, shutdown_graceful_timeout=30
        ) as worker:
            await all_started.wait()
            stopped_at = anyio.current_time()
            worker.stop()
        assert anyio.current_time() - stopped_at == pytest.approx(30, abs=0.1)
        assert job(connector, short).status is Status.SUCCEEDED
        assert job(connector, long).status is Status.ABORTED


@pytest.mark.parametrize(
    ("delete_jobs", "left"),
    [
        pytest.param("never", [Status.SUCCEEDED, Status.FAILED], id="never"),
        pytest.param("successful", [Status.FAILED], id="successful"),
        pytest.param("always", [], id="always"),
    ],
)
async def test_delete_jobs(app, connector, delete_jobs, left):
    """delete_jobs decides which finished jobs are kept."""

    @app.task
    async def ok() -> None:
        pass

    @app.task
    async def ko() -> None:
        raise ValueError

    await ok.defer_async()
    await ko.defer_async()
    await run_one_shot(app, delete_jobs=delete_jobs)
    assert statuses(connector) == left


async def test_statistics(app, connector):
    """statistics() shows the worker's id, slots, listening, and counts outcomes."""
    started, release = anyio.Event(), anyio.Event()

    @app.task
    async def busy() -> None:
        started.set()
        await release.wait()

    @app.task
    async def ko() -> None:
        raise ValueError

    await ko.defer_async()
    await busy.defer_async()
    async with running_worker(app, name="stats", concurrency=3) as worker:
        await started.wait()
        running = worker.statistics()
        release.set()
    done = worker.statistics()
    assert running.worker_id is not None
    assert (running.name, running.running_jobs, running.free_slots) == ("stats", 1, 2)
    assert running.listening
    assert not running.stopping
    assert running.last_fetch_at is not None
    assert (done.running_jobs, done.stopping) == (0, True)
    assert done.jobs_done["succeeded"] == done.jobs_done["failed"] == 1


class TestSupervision:
    async def test_crashing_component_stops_the_worker(
        self, app, connector, monkeypatch
    ):
        """An unexpected error in a child stops the worker cleanly and propagates."""
        forever, started = forever_task(app)

        async def broken_heartbeat(worker_id: int) -> bool:
            await started.wait()
            raise RuntimeError("heartbeat broke")

        monkeypatch.setattr(connector, "worker_heartbeat", broken_heartbeat)
        job_id = await forever.defer_async()
        with pytest.RaisesGroup(
            pytest.RaisesExc(RuntimeError, match="heartbeat broke")
        ):
            with anyio.fail_after(HANG_GUARD_SECONDS):
                await app.run_worker(update_heartbeat_interval=0.01)
        assert job(connector, job_id).status is Status.ABORTED
        assert connector.store.workers == {}

    async def test_registration_error_propagates_as_is(
        self, app, connector, monkeypatch
    ):
        """A worker that cannot register raises the ConnectorException itself."""

        async def unreachable(*args: Any, **kwargs: Any) -> int:
            raise pa.ConnectorException("no database")

        monkeypatch.setattr(connector, "worker_register", unreachable)
        with pytest.raises(pa.ConnectorException, match="no database"):
            await run_one_shot(app)

    async def test_polls_while_the_listener_is_down(self, app, connector, monkeypatch):
        """With LISTEN failing, the worker keeps running jobs by polling."""
        attempts = 0
        done = anyio.Event()

        async def down(on_notification: Callable[..., object], **kwargs: Any) -> None:
            nonlocal attempts
            attempts += 1
            raise pa.ConnectorException("LISTEN refused")

        monkeypatch.setattr(connector, "listen", down)

        @app.task
        async def ping() -> None:
            done.set()

        async with running_worker(app, fetch_job_polling_interval=0.01) as worker:
            await ping.defer_async()
            await done.wait()
            assert not worker.statistics().listening
        assert attempts >= 1


class TestTimers:
    @mock_clock()
    async def test_idle_worker_polls_at_the_polling_interval(self, app, connector):
        """Without notifications, a new job starts at the next poll."""
        ran = anyio.Event()

        @app.task
        async def ping() -> None:
            ran.set()

        async with running_worker(
            app, guard=100, listen_notify=False, fetch_job_polling_interval=7
        ):
            start = anyio.current_time()
            await ping.defer_async()
            await ran.wait()
            assert anyio.current_time() == pytest.approx(start + 7)

    @mock_clock()
    async def test_abort_requests_are_polled_without_notifications(
        self, app, connector
    ):
        """Without LISTEN, an abort request is seen at the next abort poll."""
        started, ended = anyio.Event(), anyio.Event()

        @app.task
        async def forever() -> None:
            started.set()
            try:
                await anyio.sleep_forever()
            finally:
                ended.set()

        job_id = await forever.defer_async()
        async with running_worker(
            app, guard=100, listen_notify=False, abort_job_polling_interval=3
        ):
            await started.wait()
            requested_at = anyio.current_time()
            await app.job_manager.cancel_job_by_id_async(job_id, abort=True)
            await ended.wait()
            assert anyio.current_time() == pytest.approx(requested_at + 3)
        assert job(connector, job_id).status is Status.ABORTED

    @mock_clock()
    async def test_listener_backoff_then_fetch_on_reconnect(
        self, app, connector, monkeypatch
    ):
        """LISTEN is retried after 0.1 s then 0.2 s; once back, the worker fetches."""
        calls: list[float] = []
        ran = anyio.Event()
        listen = connector.listen

        async def flaky(on_notification: Callable[..., object], **kwargs: Any) -> None:
            calls.append(anyio.current_time())
            if len(calls) <= 2:
                raise pa.ConnectorException("LISTEN refused")
            await listen(on_notification, **kwargs)

        monkeypatch.setattr(connector, "listen", flaky)

        @app.task
        async def ping() -> None:
            ran.set()

        async with running_worker(app, guard=100, fetch_job_polling_interval=1000):
            await ping.defer_async()  # nobody listens: the notification is lost
            await ran.wait()
            ran_at = anyio.current_time()
        assert [t - calls[0] for t in calls] == pytest.approx([0, 0.1, 0.3])
        assert ran_at == pytest.approx(calls[2])

    @mock_clock()
    async def test_heartbeat_registers_again_when_pruned(
        self,
        app: pa.App,
        connector: pa.InMemoryConnector,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A worker whose row was pruned registers again, same id, at its next beat."""
        registered_again = anyio.Event()
        register = connector.worker_register

        async def tracking(
            name: str, queues: Sequence[str] | None, worker_id: int | None = None
        ) -> int:
            registered = await register(name, queues, worker_id)
            if worker_id is not None:
                registered_again.set()
            return registered

        monkeypatch.setattr(connector, "worker_register", tracking)
        async with running_worker(
            app, guard=100, update_heartbeat_interval=10
        ) as worker:
            connector.store.workers.clear()
            pruned_at = anyio.current_time()
            await registered_again.wait()
            assert anyio.current_time() - pruned_at <= 10
            assert list(connector.store.workers) == [worker.worker_id]
