"""Deferring on Django's own connection, from sync code and views."""

from __future__ import annotations

import json

import psycopg
import pytest
from django.db import transaction
from django.test import AsyncClient, Client

from procrastinate_anyio import AlreadyEnqueued, PsycopgConnector
from procrastinate_anyio.contrib.django import app, connector_params

from .testapp.tasks import add, write_note


def job_count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM pa_jobs").fetchone()
        assert row is not None
        return int(row[0])


def test_defer_needs_no_open(django_db: str) -> None:
    """``task.defer()`` works without ``with app.open()`` and commits at once."""
    job_id = write_note.defer(text="hi")

    job = app.job_manager.get_job(job_id)
    assert job is not None
    assert job.task_kwargs == {"text": "hi"}
    assert job_count(django_db) == 1


def test_defer_rolled_back_with_the_transaction(django_db: str) -> None:
    """A job deferred in a transaction that rolls back does not exist."""

    def defer_then_fail() -> None:
        with transaction.atomic():
            write_note.defer(text="hi")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        defer_then_fail()

    assert job_count(django_db) == 0


def test_defer_committed_with_the_transaction(django_db: str) -> None:
    """A job deferred in a transaction exists once it commits, not before."""
    with transaction.atomic():
        write_note.defer(text="hi")
        assert job_count(django_db) == 0  # another connection does not see it yet

    assert job_count(django_db) == 1


def test_taken_queueing_lock_leaves_the_transaction_usable(django_db: str) -> None:
    """AlreadyEnqueued inside ``atomic`` rolls back only the failed defer."""
    with transaction.atomic():
        add.configure(queueing_lock="one").defer(a=1, b=2)
        with pytest.raises(AlreadyEnqueued):
            add.configure(queueing_lock="one").defer(a=1, b=2)
        add.defer(a=3, b=4)

    assert job_count(django_db) == 2


def test_view_defers_in_its_transaction(django_db: str) -> None:
    """A sync view defers in its transaction: commit keeps the job, rollback
    drops it."""
    client = Client()

    kept = client.get("/defer/", {"text": "kept"}).json()
    dropped = client.get("/defer/", {"text": "dropped", "fail": "1"}).json()

    assert dropped == {"job_id": None}
    job = app.job_manager.get_job(kept["job_id"])
    assert job is not None
    assert job.task_kwargs == {"text": "kept"}
    assert job_count(django_db) == 1


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_view_defers(django_db: str, anyio_backend: str) -> None:
    """An async view defers with ``defer_async`` (on asyncio: Django's async
    machinery is asyncio's)."""
    response = await AsyncClient().get("/defer-async/", {"text": "async"})

    job_id = json.loads(response.content)["job_id"]
    job = await app.job_manager.get_job_async(job_id)
    assert job is not None
    assert job.task_kwargs == {"text": "async"}


async def test_connector_params_for_an_own_app(
    django_db: str, anyio_backend: str
) -> None:
    """``connector_params()`` connects a PsycopgConnector to Django's database."""
    connector = PsycopgConnector(**connector_params("default"))
    await connector.open_async()
    try:
        with app.replace_connector(connector):
            job_id = await add.defer_async(a=1, b=2)
            job = await app.job_manager.get_job_async(job_id)
    finally:
        await connector.close_async()

    assert job is not None
    assert job.task_name == add.name


def test_cancel_rolled_back_with_the_transaction(django_db: str) -> None:
    """A cancel in a transaction that rolls back never happened, on Django's
    connection or given as Procrastinate's ``connection`` (Django's raw one)."""
    from django.db import connection

    job_id = write_note.defer(text="hi")

    def cancel_then_fail(**options: object) -> None:
        with transaction.atomic():
            assert app.job_manager.cancel_job_by_id(job_id, **options)  # type: ignore[arg-type]  # connection only
            raise RuntimeError

    with pytest.raises(RuntimeError):
        cancel_then_fail()
    connection.ensure_connection()
    with pytest.raises(RuntimeError):
        cancel_then_fail(connection=connection.connection)

    assert app.job_manager.get_job_status(job_id) == "todo"
    with transaction.atomic():
        assert app.job_manager.cancel_job_by_id(
            job_id, connection=connection.connection
        )
    assert app.job_manager.get_job_status(job_id) == "cancelled"
