"""The job manager's Procrastinate-named maintenance API on the in-memory
connector: job status, stalled jobs, ``retry_job``, ``delete_old_jobs``, the
builtin task's Procrastinate name, dict-like ``list_queues`` results and
``list_jobs`` without a silent cap."""

from __future__ import annotations

import datetime

import pytest

from procrastinate_anyio import App, InMemoryConnector, JobNotFound, Status
from procrastinate_anyio.connectors import FetchParams, JobOutcome

pytestmark = pytest.mark.anyio

HOUR = datetime.timedelta(hours=1)


@pytest.fixture
def app(connector: InMemoryConnector) -> App:
    app = App(connector=connector)

    @app.task(name="work", queue="q")
    def work() -> None:
        pass

    return app


async def claim(connector: InMemoryConnector, worker_id: int) -> list[int]:
    claimed = await connector.job_fetch_many(
        FetchParams(worker_id=worker_id, queues=None, limit=10)
    )
    return [job.id for job in claimed]


async def test_get_job_status(app: App) -> None:
    """``get_job_status[_async]`` gives a job's status; an unknown id raises."""
    async with app.open_async():
        job_id = await app.configure_task("work").defer_async()

        assert await app.job_manager.get_job_status_async(job_id) is Status.TODO
        assert app.job_manager.get_job_status(job_id) is Status.TODO
        with pytest.raises(JobNotFound):
            await app.job_manager.get_job_status_async(job_id + 1)


async def test_stalled_jobs_retried(app: App, connector: InMemoryConnector) -> None:
    """Procrastinate's recovery script: the ``doing`` jobs of a silent worker
    come back with ``get_stalled_jobs`` and go back to todo with
    ``retry_job``."""
    async with app.open_async():
        job_id = await app.configure_task("work").defer_async()
        dead = await connector.worker_register("dead", None)
        assert await claim(connector, dead) == [job_id]
        connector.store.workers[dead].last_heartbeat -= HOUR

        stalled = await app.job_manager.get_stalled_jobs()
        assert [job.id for job in stalled] == [job_id]
        assert await app.job_manager.get_stalled_jobs(task_name="other") == []
        assert await app.job_manager.get_stalled_jobs(queue="other") == []
        for stalled_job in stalled:
            await app.job_manager.retry_job(stalled_job)

        job = await app.job_manager.get_job_async(job_id)
        assert job is not None
        assert (job.status, job.attempts) == (Status.TODO, 1)


async def test_stalled_by_start_time(app: App, connector: InMemoryConnector) -> None:
    """With ``nb_seconds``, jobs started longer ago than that are stalled,
    whatever their worker's heartbeat."""
    async with app.open_async():
        job_id = await app.configure_task("work").defer_async()
        alive = await connector.worker_register("alive", None)
        await claim(connector, alive)

        assert await app.job_manager.get_stalled_jobs(nb_seconds=3600) == []
        just_now = await app.job_manager.get_stalled_jobs(nb_seconds=0)
        assert [job.id for job in just_now] == [job_id]


async def test_retry_job_of_a_failed_job(
    app: App, connector: InMemoryConnector
) -> None:
    """``retry_job`` of a failed job is a manual retry, with new options."""
    async with app.open_async():
        job_id = await app.configure_task("work").defer_async()
        await claim(connector, 1)
        await connector.job_finish_many(
            [JobOutcome(job_id=job_id, status=Status.FAILED)]
        )
        failed = await app.job_manager.get_job_async(job_id)
        assert failed is not None

        await app.job_manager.retry_job(failed, priority=5, queue="again")

        job = await app.job_manager.get_job_async(job_id)
        assert job is not None
        assert (job.status, job.priority, job.queue) == (Status.TODO, 5, "again")


async def test_delete_old_jobs_procrastinate_signature(
    app: App, connector: InMemoryConnector
) -> None:
    """``await delete_old_jobs(nb_hours, ...)`` deletes finished jobs older
    than that and says how many."""
    async with app.open_async():
        job_id = await app.configure_task("work").defer_async()
        await claim(connector, 1)
        await connector.job_finish_many(
            [JobOutcome(job_id=job_id, status=Status.SUCCEEDED)]
        )

        assert await app.job_manager.delete_old_jobs(1) == 0
        assert await app.job_manager.delete_old_jobs(0, queue="q") == 1


def test_builtin_task_under_procrastinate_name(app: App) -> None:
    """The builtin cleanup task also answers to Procrastinate's name."""
    assert app.get_task(
        "builtin:procrastinate.builtin_tasks.remove_old_jobs"
    ) is app.get_task("builtin:remove_old_jobs")


async def test_list_queues_as_dicts(app: App) -> None:
    """``list_queues`` results read like Procrastinate's dicts."""
    async with app.open_async():
        await app.configure_task("work").defer_async()
        (stats,) = await app.job_manager.list_queues_async()

    assert stats["name"] == "q"
    assert dict(stats) == {
        "name": "q",
        "jobs_count": 1,
        "todo": 1,
        "doing": 0,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 0,
        "aborted": 0,
    }
    with pytest.raises(KeyError):
        stats["nope"]


async def test_list_jobs_has_no_silent_cap(app: App) -> None:
    """``list_jobs`` returns every job unless a limit is asked for."""
    async with app.open_async():
        await app.configure_task("work").batch_defer_async(*[{}] * 1005)

        assert len(await app.job_manager.list_jobs_async()) == 1005
        assert len(await app.job_manager.list_jobs_async(limit=3)) == 3
