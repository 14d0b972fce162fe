"""The job manager on the in-memory connector: manual retry, group counts,
retention and waiting for a job, sync and async."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import procrastinate_anyio as pa
from procrastinate_anyio import (
    AlreadyEnqueued,
    App,
    InMemoryConnector,
    JobNotFound,
    Status,
    _job_manager,
)
from procrastinate_anyio.connectors import FetchParams, JobOutcome
from tests.support import HANG_GUARD_SECONDS, mock_clock

from .conftest import NOW, stored_jobs

if TYPE_CHECKING:
    from collections.abc import Iterator

HOUR = datetime.timedelta(hours=1)


@pytest.fixture
def clock() -> list[datetime.datetime]:
    """The connector's time, in a list so that tests can move it."""
    return [NOW]


@pytest.fixture
def connector(clock: list[datetime.datetime]) -> InMemoryConnector:
    return InMemoryConnector(clock=lambda: clock[0])


@pytest.fixture
def app(connector: InMemoryConnector) -> Iterator[App]:
    """An app with a ``work`` task (queue ``q1``), open for sync calls."""
    app = App(connector=connector)
    app.task(name="work", queue="q1")(lambda n: None)
    with app.open():
        yield app


def defer(app: App, lock: str | None = "L", **options: Any) -> int:
    """Defer a ``work`` job, on lock ``L`` unless told otherwise."""
    return app.configure_task("work", lock=lock, **options).defer(n=0)


def finish(connector: InMemoryConnector, job_id: int, status: Status) -> None:
    """Claim the job (the next one of its queue) and record ``status``."""
    store = connector.store
    queues = [store.rows[job_id].job.queue]
    (job,) = store.job_fetch_many(FetchParams(worker_id=1, queues=queues, limit=1))
    assert job.id == job_id
    store.job_finish_many([JobOutcome(job_id=job_id, status=status, lock=job.lock)])


class TestRetry:
    @pytest.mark.parametrize(
        "status",
        [
            pytest.param(Status.FAILED, id="failed"),
            pytest.param(Status.ABORTED, id="aborted"),
        ],
    )
    def test_sync(self, app: App, connector, status: Status) -> None:
        """retry_job_by_id puts a failed or aborted job back to todo, elsewhere if asked."""
        job_id = defer(app)
        finish(connector, job_id, status)

        app.job_manager.retry_job_by_id(job_id, priority=4, queue="q2", lock="M")

        job = app.job_manager.get_job(job_id)
        assert job is not None
        assert (job.status, job.priority, job.queue, job.lock) == (
            Status.TODO,
            4,
            "q2",
            "M",
        )

    @pytest.mark.anyio
    async def test_async_later(self, app: App, connector) -> None:
        """retry_job_by_id_async with retry_at schedules the next attempt."""
        job_id = defer(app)
        finish(connector, job_id, Status.FAILED)

        await app.job_manager.retry_job_by_id_async(job_id, retry_at=NOW + HOUR)

        job = await app.job_manager.get_job_async(job_id)
        assert job is not None
        assert (job.status, job.scheduled_at) == (
            Status.TODO,
            NOW + HOUR,
        )

    @pytest.mark.parametrize(
        "status",
        [
            pytest.param(Status.TODO, id="todo"),
            pytest.param(Status.SUCCEEDED, id="succeeded"),
            pytest.param(None, id="missing"),
        ],
    )
    def test_not_retryable(self, app: App, connector, status: Status | None) -> None:
        """A job that is not failed, aborted or cancelled raises JobNotFound."""
        job_id = defer(app) if status else 999
        if status is Status.SUCCEEDED:
            finish(connector, job_id, status)

        with pytest.raises(JobNotFound, match=f"id {job_id}"):
            app.job_manager.retry_job_by_id(job_id)

    @pytest.mark.parametrize(
        ("options", "error"),
        [
            pytest.param(
                {"retry_at": NOW.replace(tzinfo=None)}, ValueError, id="naive"
            ),
            pytest.param({"priority": "high"}, TypeError, id="priority"),
            pytest.param({"queue": ""}, ValueError, id="queue"),
        ],
    )
    def test_bad_options(
        self, app: App, connector, options: dict[str, Any], error: type[Exception]
    ) -> None:
        """Bad options raise before anything changes."""
        job_id = defer(app)
        finish(connector, job_id, Status.FAILED)

        with pytest.raises(error):
            app.job_manager.retry_job_by_id(job_id, **options)

        assert stored_jobs(connector)[0].status is Status.FAILED

    def test_queueing_lock_taken(self, app: App, connector) -> None:
        """A retry whose queueing lock is held by a waiting job raises AlreadyEnqueued."""
        job_id = defer(app, queueing_lock="Q", lock="A")
        finish(connector, job_id, Status.FAILED)
        defer(app, queueing_lock="Q")

        with pytest.raises(AlreadyEnqueued):
            app.job_manager.retry_job_by_id(job_id)


class TestInspection:
    @pytest.fixture
    def jobs(self, app: App, connector) -> list[int]:
        """q1/L failed, q1/L todo, q2/M succeeded, q2 without lock todo."""
        ids = [defer(app)]
        finish(connector, ids[0], Status.FAILED)
        ids += [defer(app), defer(app, queue="q2", lock="M")]
        finish(connector, ids[2], Status.SUCCEEDED)
        ids.append(defer(app, queue="q2", lock=None))
        return ids

    @pytest.mark.parametrize(
        ("method", "filters", "expected"),
        [
            pytest.param("list_queues", {}, [("q1", 2), ("q2", 2)], id="queues"),
            pytest.param(
                "list_queues",
                {"status": "todo"},
                [("q1", 1), ("q2", 1)],
                id="queues-todo",
            ),
            pytest.param("list_tasks", {"queue": "q2"}, [("work", 2)], id="tasks"),
            pytest.param("list_locks", {}, [("L", 2), ("M", 1)], id="locks"),
            pytest.param(
                "list_locks", {"status": Status.FAILED}, [("L", 1)], id="locks-failed"
            ),
            pytest.param("list_locks", {"limit": 1}, [("L", 2)], id="limit"),
        ],
    )
    @pytest.mark.anyio
    async def test_sync_and_async(
        self,
        app: App,
        jobs: list[int],
        method: str,
        filters: dict[str, Any],
        expected: Any,
    ) -> None:
        """Group counts are the same through the sync and async methods."""
        groups = getattr(app.job_manager, method)(**filters)
        async_groups = await getattr(app.job_manager, f"{method}_async")(**filters)

        assert [(g.name, g.jobs_count) for g in groups] == expected
        assert async_groups == groups

    @pytest.mark.anyio
    async def test_list_jobs(self, app: App, jobs: list[int]) -> None:
        """list_jobs[_async] filters by queue, lock, status and task; ``limit`` caps."""
        manager = app.job_manager
        assert [j.id for j in manager.list_jobs(queue="q2")] == jobs[2:]
        assert [j.id for j in manager.list_jobs(lock="L", status="todo")] == [jobs[1]]
        assert [
            j.id for j in await manager.list_jobs_async(task="work", limit=2)
        ] == jobs[:2]

    def test_bad_status(self, app: App) -> None:
        """An unknown status is refused."""
        with pytest.raises(ValueError, match="lost"):
            app.job_manager.list_queues(status="lost")


@pytest.mark.anyio
class TestDeleteOld:
    @pytest.mark.parametrize(
        ("flags", "left"),
        [
            pytest.param({}, ["failed", "cancelled", "todo"], id="succeeded-only"),
            pytest.param({"include_failed": True}, ["cancelled", "todo"], id="failed"),
            pytest.param(
                {"include_failed": True, "include_cancelled": True},
                ["todo"],
                id="cancelled",
            ),
        ],
    )
    async def test_statuses(
        self, app: App, connector, clock, flags: dict[str, Any], left: list[str]
    ) -> None:
        """Succeeded jobs go; failed, cancelled and aborted ones when asked."""
        for status in (Status.SUCCEEDED, Status.FAILED):
            finish(connector, defer(app, lock=None), status)
        app.job_manager.cancel_job_by_id(defer(app, lock=None))
        defer(app, lock=None)
        clock[0] += 2 * HOUR

        deleted = await app.job_manager.delete_old_jobs_async(max_hours=1, **flags)

        assert deleted == 4 - len(left)
        assert [job.status.value for job in stored_jobs(connector)] == left

    async def test_age_and_queue(self, app: App, connector, clock) -> None:
        """Only jobs finished more than ``max_hours`` ago, of ``queue`` if given."""
        old_q1 = defer(app, lock=None)
        old_q2 = defer(app, queue="q2", lock=None)
        finish(connector, old_q1, Status.SUCCEEDED)
        finish(connector, old_q2, Status.SUCCEEDED)
        clock[0] += 2 * HOUR
        recent = defer(app, lock=None)
        finish(connector, recent, Status.SUCCEEDED)
        clock[0] += HOUR / 2

        assert await app.job_manager.delete_old_jobs_async(max_hours=1, queue="q2") == 1
        assert await app.job_manager.delete_old_jobs_async(max_hours=1) == 1
        assert [job.id for job in stored_jobs(connector)] == [recent]

    async def test_negative_hours(self, app: App) -> None:
        """A negative ``max_hours`` raises ValueError."""
        with pytest.raises(ValueError, match="max_hours"):
            await app.job_manager.delete_old_jobs_async(max_hours=-1)


@pytest.mark.anyio
class TestWaitForJob:
    async def test_woken_by_the_finished_notification(
        self, app: App, connector, monkeypatch
    ) -> None:
        """wait_for_job_async returns the finished job when it is told, not by polling."""
        monkeypatch.setattr(_job_manager, "WAIT_POLL_INTERVAL_SECONDS", 1000)
        job_id = defer(app)

        async def finish_when_waiting() -> None:
            await anyio.wait_all_tasks_blocked()
            finish(connector, job_id, Status.SUCCEEDED)

        with anyio.fail_after(HANG_GUARD_SECONDS):
            async with anyio.create_task_group() as tg:
                tg.start_soon(finish_when_waiting)
                job = await app.job_manager.wait_for_job_async(job_id)

        assert (job.id, job.status) == (job_id, Status.SUCCEEDED)

    async def test_finished_already(self, app: App, connector) -> None:
        """A finished job is returned at once, sync and async."""
        job_id = defer(app)
        finish(connector, job_id, Status.FAILED)

        assert (
            await app.job_manager.wait_for_job_async(job_id)
        ).status is Status.FAILED
        assert app.job_manager.wait_for_job(job_id, timeout=0).status is Status.FAILED

    async def test_unknown_job(self, app: App) -> None:
        """Waiting for a job that does not exist raises JobNotFound, sync and async."""
        with pytest.raises(JobNotFound):
            await app.job_manager.wait_for_job_async(999)
        with pytest.raises(JobNotFound):
            app.job_manager.wait_for_job(999, timeout=0)

    @mock_clock()
    async def test_timeout_async(self, app: App) -> None:
        """wait_for_job_async raises TimeoutError after ``timeout`` seconds."""
        job_id = defer(app)
        start = anyio.current_time()

        with pytest.raises(TimeoutError):
            await app.job_manager.wait_for_job_async(job_id, timeout=30)

        assert anyio.current_time() - start == pytest.approx(30)

    def test_timeout_sync(self, app: App) -> None:
        """wait_for_job raises TimeoutError when the job is not finished in time."""
        job_id = defer(app)

        with pytest.raises(TimeoutError, match=str(job_id)):
            app.job_manager.wait_for_job(job_id, timeout=0)


class TestQueuePause:
    @pytest.mark.anyio
    async def test_pause_resume_and_list(self, app: App) -> None:
        """The job manager pauses, lists and resumes queues."""
        manager = app.job_manager

        assert await manager.pause_queue_async("emails")
        assert [q.name for q in await manager.list_paused_queues_async()] == ["emails"]
        assert await manager.resume_queue_async("emails")
        assert not await manager.resume_queue_async("emails")

    def test_sync_twins(self, app: App) -> None:
        """The sync API does the same inside ``app.open()``."""
        with app.open():
            assert app.job_manager.pause_queue("emails")
            assert not app.job_manager.pause_queue("emails")
            assert [q.name for q in app.job_manager.list_paused_queues()] == ["emails"]
            assert app.job_manager.resume_queue("emails")

    @pytest.mark.parametrize(
        "name",
        [pytest.param("", id="empty"), pytest.param("q\x00", id="nul")],
    )
    @pytest.mark.anyio
    async def test_bad_names_write_nothing(self, app: App, name: str) -> None:
        """A queue name the database cannot hold is refused before any write."""
        with pytest.raises(ValueError, match="queue"):
            await app.job_manager.pause_queue_async(name)
        assert await app.job_manager.list_paused_queues_async() == []


class TestWaitThroughConnectionErrors:
    @pytest.mark.anyio
    @mock_clock()
    async def test_transient_errors_are_retried(
        self, app: App, connector: InMemoryConnector
    ) -> None:
        """A wait outlives a dropped connection: the read is tried again."""
        job_id = await app.configure_task("t").defer_async()
        worker_id = await connector.worker_register("w", None)
        await connector.job_fetch_many(
            FetchParams(worker_id=worker_id, queues=None, limit=1)
        )
        await connector.job_finish_many(
            [JobOutcome(job_id=job_id, status=Status.SUCCEEDED)]
        )
        failures = [pa.ConnectorException("connection lost")] * 2
        get = connector.job_get

        async def flaky(job_id: int) -> pa.Job | None:
            if failures:
                raise failures.pop()
            return await get(job_id)

        connector.job_get = flaky  # type: ignore[method-assign]  # a fault

        job = await app.job_manager.wait_for_job_async(job_id, timeout=10)

        assert (job.status, failures) == (Status.SUCCEEDED, [])

    @pytest.mark.anyio
    async def test_refused_statements_propagate(
        self, app: App, connector: InMemoryConnector
    ) -> None:
        """A statement the database refuses is not retried."""

        async def refused(job_id: int) -> pa.Job | None:
            raise pa.ConnectorException("bad", transient=False)

        connector.job_get = refused  # type: ignore[method-assign]  # a fault

        with pytest.raises(pa.ConnectorException, match="bad"):
            await app.job_manager.wait_for_job_async(1, timeout=10)
