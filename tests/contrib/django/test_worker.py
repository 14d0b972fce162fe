"""The worker on the Django app: ORM tasks, connections closed around jobs,
woken by a commit."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import psycopg
import pytest
from django.db import connections, transaction

from procrastinate_anyio import Status
from procrastinate_anyio.contrib.django import app
from procrastinate_anyio.contrib.django._app import with_fresh_connections

from .testapp.models import Note
from .testapp.tasks import add, connection_id, write_note, write_note_async

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")


async def in_thread(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` in a worker thread, closing that thread's Django
    connections afterwards (the test is not a worker: nothing closes them)."""

    def run() -> T:
        try:
            return func(*args)
        finally:
            connections.close_all()

    return await anyio.to_thread.run_sync(run)


def other_sessions(dsn: str) -> int:
    """Sessions on the test database other than the asking one."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
        assert row is not None
        return int(row[0])


async def test_worker_runs_orm_tasks(django_db: str, anyio_backend: str) -> None:
    """Sync tasks write through the ORM from the worker's threads, and their
    Django connections are closed after each job (``CONN_MAX_AGE = 0``);
    async tasks run beside them."""
    ids = await in_thread(write_note.batch_defer, {"text": "a"}, {"text": "b"})
    ids.append(await in_thread(functools.partial(add.defer, a=1, b=2)))

    with anyio.fail_after(30):
        await app.run_worker(wait=False, concurrency=2)

    notes = await in_thread(lambda: sorted(Note.objects.values_list("text", flat=True)))
    assert notes == ["a", "b"]
    jobs = [await in_thread(app.job_manager.get_job, job_id) for job_id in ids]
    assert [job.status if job else None for job in jobs] == [Status.SUCCEEDED] * 3
    assert jobs[2] is not None
    assert jobs[2].result == 3
    assert other_sessions(django_db) == 0


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_task_uses_the_async_orm(
    django_db: str, anyio_backend: str
) -> None:
    """Async tasks can use Django's async ORM (on asyncio, where it runs)."""
    job_id = await in_thread(functools.partial(write_note_async.defer, text="async"))

    with anyio.fail_after(30):
        await app.run_worker(wait=False)

    job = await app.job_manager.get_job_async(job_id)
    assert job is not None
    assert job.status is Status.SUCCEEDED
    note = await Note.objects.aget()
    assert (note.id, note.text) == (job.result, "async")


async def test_commit_wakes_the_worker(django_db: str, anyio_backend: str) -> None:
    """A job deferred in a transaction is run once it commits: the commit's
    notification wakes the worker (polling is too slow to matter here)."""

    def defer_in_a_transaction() -> int:
        with transaction.atomic():
            job_id = write_note.defer(text="woken")
        return job_id

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            await tg.start(
                functools.partial(app.run_worker, fetch_job_polling_interval=3600)
            )
            job_id = await in_thread(defer_in_a_transaction)
            job = await app.job_manager.wait_for_job_async(job_id)
            tg.cancel_scope.cancel()

    assert job.status is Status.SUCCEEDED


def test_dead_connection_replaced_before_a_job(django_db: str) -> None:
    """Around a job, a connection whose server session died is replaced (with
    ``CONN_HEALTH_CHECKS``), as at the start of a request."""
    settings = connections["default"].settings_dict
    saved = settings["CONN_MAX_AGE"], settings["CONN_HEALTH_CHECKS"]
    settings["CONN_MAX_AGE"], settings["CONN_HEALTH_CHECKS"] = None, True
    connections["default"].close()
    try:
        first = with_fresh_connections(connection_id.func)()
        with psycopg.connect(django_db, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", [first])

        second = with_fresh_connections(connection_id.func)()

        assert second != first
    finally:
        settings["CONN_MAX_AGE"], settings["CONN_HEALTH_CHECKS"] = saved
        connections["default"].close()
