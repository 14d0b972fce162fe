"""Procrastinate's connector arguments against a real PostgreSQL: a sync-only
app, ``kwargs``/``min_size``, ``json_dumps``/``json_loads`` and
``pool_factory``."""

from __future__ import annotations

import datetime
import functools
import json
from typing import Any

import anyio
import psycopg_pool
import pytest

import procrastinate_anyio as pa
from procrastinate_anyio import AppNotOpen, Status
from tests.support import PG_HANG_GUARD_SECONDS

pytestmark = pytest.mark.anyio

WORKER = {"install_signal_handlers": False, "wait": False}


def test_sync_only_app(pg_dsn: str) -> None:
    """``App(connector=SyncPsycopgConnector(...))`` defers from sync code;
    what needs an async connector says so."""
    app = pa.App(connector=pa.SyncPsycopgConnector(pg_dsn))

    @app.task(name="hello")
    def hello() -> None:
        pass

    app.open()
    try:
        job_id = hello.defer()
        assert app.job_manager.get_job_status(job_id) is Status.TODO
    finally:
        app.close()
    with pytest.raises(AppNotOpen, match="sync one"):
        anyio.run(app.open_async)
    with pytest.raises(AppNotOpen, match="sync one"):
        app.run_worker(**WORKER)


def encode(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return {"__datetime__": value.isoformat()}
    raise TypeError(f"cannot encode {value!r}")


def decode(obj: dict[str, Any]) -> Any:
    if "__datetime__" in obj:
        return datetime.datetime.fromisoformat(obj["__datetime__"])
    return obj


async def test_json_dumps_and_loads(pg_dsn: str) -> None:
    """Arguments and results go through the connector's ``json_dumps`` and
    come back through its ``json_loads``."""
    connector = pa.PsycopgConnector(
        pg_dsn,
        json_dumps=functools.partial(json.dumps, default=encode),
        json_loads=functools.partial(json.loads, object_hook=decode),
    )
    app = pa.App(connector=connector, worker_defaults=WORKER)
    when = datetime.datetime(2030, 1, 2, 3, 4, tzinfo=datetime.timezone.utc)
    seen: list[Any] = []

    @app.task(name="later")
    async def later(at: datetime.datetime) -> datetime.datetime:
        seen.append(at)
        return at + datetime.timedelta(days=1)

    async with app.open_async():
        job_id = await later.defer_async(at=when)
        with anyio.fail_after(PG_HANG_GUARD_SECONDS):
            await app.run_worker_async()
        job = await app.job_manager.get_job_async(job_id)

    assert seen == [when]
    assert job is not None
    assert (job.status, job.result) == (
        Status.SUCCEEDED,
        when + datetime.timedelta(days=1),
    )


async def test_kwargs_and_min_size(pg_dsn: str) -> None:
    """``kwargs`` are connection parameters, as in Procrastinate; ``min_size``
    is accepted."""
    connector = pa.PsycopgConnector(
        pg_dsn, kwargs={"application_name": "ported"}, min_size=1, max_size=2
    )
    app = pa.App(connector=connector)
    async with app.open_async():
        stats = await app.job_manager.list_queues_async()
        assert stats == []
    assert connector.connect_kwargs["application_name"] == "ported"


async def test_null_pool_keeps_no_connection(pg_dsn: str) -> None:
    """``pool_factory=psycopg_pool.AsyncNullConnectionPool``: no connection
    stays open between operations (for PgBouncer)."""
    connector = pa.PsycopgConnector(
        pg_dsn, pool_factory=psycopg_pool.AsyncNullConnectionPool
    )
    app = pa.App(connector=connector)

    @app.task(name="t")
    def t() -> None:
        pass

    async with app.open_async():
        await t.defer_async()
        await app.job_manager.list_jobs_async()
        assert connector._pool is not None
        assert connector._pool.statistics().idle == 0


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        pytest.param({"pool_factory": dict}, TypeError, id="foreign-pool"),
        pytest.param({"min_size": 5, "max_size": 2}, ValueError, id="min-over-max"),
        pytest.param({"json_dumps": 42}, TypeError, id="dumps-not-callable"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    """Arguments that cannot work are refused at construction."""
    with pytest.raises(error):
        pa.PsycopgConnector("", **kwargs)
