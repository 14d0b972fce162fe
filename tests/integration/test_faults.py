"""Fault injection against a real PostgreSQL, on asyncio and trio: the
worker's connections terminated (pool connections inside a claim and inside
a flush, idle ones, the listener), the claim and the flush timing out behind
a lock, the completer failing for a while, the worker's row pruned. Each
time the worker goes on, and in the end every job succeeded: none lost,
none left ``doing``.

Faults are injected when the worker's own log says it reached the point
under test (a logging handler sets an event), or when ``pg_stat_activity``
shows the statement under test waiting for a lock, never after a sleep.
(A PostgreSQL restart is in ``test_restart.py``, on a private cluster: the
test server is shared; a waiter's connections terminated, in
``test_waiter_faults.py``.)
"""

from __future__ import annotations

import contextlib
import functools
import logging
import uuid
from typing import TYPE_CHECKING, Any

import anyio
import psycopg
import pytest
from psycopg import sql

import procrastinate_anyio as pa
from procrastinate_anyio import Status
from procrastinate_anyio.connectors.postgres import connect
from tests.support import PG_HANG_GUARD_SECONDS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

pytestmark = pytest.mark.anyio

JOBS = 200


class LogEvents(logging.Handler):
    """An event per log ``action``, set when a record with it is emitted (in
    the event loop's thread: the worker logs from there)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.events: dict[str, anyio.Event] = {}
        self.seen: list[str] = []
        self.messages: list[str] = []

    def event(self, action: str) -> anyio.Event:
        return self.events.setdefault(action, anyio.Event())

    def emit(self, record: logging.LogRecord) -> None:
        action = getattr(record, "action", None)
        message = record.getMessage()
        self.messages.append(message)
        if "too many connections" in message:
            self.event("too_many_connections").set()
        if action is not None:
            self.seen.append(action)
            self.event(action).set()


@pytest.fixture
def log_events() -> Iterator[LogEvents]:
    handler = LogEvents()
    root = logging.getLogger("procrastinate_anyio")
    previous = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def make_app(dsn: str, **connect_kwargs: Any) -> pa.App:
    return pa.App(
        connector=pa.PsycopgConnector(
            dsn, max_size=4, connect_kwargs=connect_kwargs or None
        ),
        worker_defaults={
            "install_signal_handlers": False,
            "shutdown_graceful_timeout": 5,
            "fetch_job_polling_interval": 0.1,
            "update_heartbeat_interval": 0.2,
            "stalled_worker_timeout": 60,
        },
    )


async def admin(dsn: str, query: str, *params: Any) -> list[dict[str, Any]]:
    async with await connect(dsn) as conn:
        cursor = await conn.execute(query.encode(), params or None)
        return await cursor.fetchall() if cursor.description else []


async def terminate_others(dsn: str) -> int:
    """Terminate every other connection to the test database, and wait
    until they are gone."""
    rows = await admin(
        dsn,
        "SELECT count(pg_terminate_backend(pid, 5000)) AS n FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    n: int = rows[0]["n"]
    return n


async def final_statuses(dsn: str) -> dict[str, int]:
    rows = await admin(
        dsn, "SELECT status::text AS s, count(*) AS n FROM pa_jobs GROUP BY 1"
    )
    return {row["s"]: row["n"] for row in rows}


@contextlib.asynccontextmanager
async def worker_running(app: pa.App, **options: Any) -> AsyncIterator[Any]:
    with anyio.fail_after(PG_HANG_GUARD_SECONDS):
        async with app.open_async(), anyio.create_task_group() as tg:
            worker = await tg.start(functools.partial(app.run_worker, **options))
            yield worker
            worker.stop()


async def defer_gated(app: pa.App, gate: anyio.Event, n: int = JOBS) -> None:
    """Declare ``work`` (waits for ``gate`` once) and defer ``n`` jobs."""

    @app.task(name="work")
    async def work(i: int) -> int:
        await gate.wait()
        return i

    async with app.open_async():
        await work.batch_defer_async(*({"i": i} for i in range(n)))


async def wait_all_done(app: pa.App, n: int = JOBS) -> None:
    """Poll until ``n`` jobs succeeded (the waiter's own connection may be
    one that was just terminated, hence the retries)."""
    while True:
        with contextlib.suppress(pa.ConnectorException):
            stats = await app.job_manager.list_jobs_async(status=Status.SUCCEEDED)
            if len(stats) == n:
                return
        await anyio.sleep(0.02)  # bounded by the hang guard


async def test_terminated_connections_mid_run(
    pg_dsn: str, log_events: LogEvents
) -> None:
    """Every connection of a busy worker (pool connections claiming and
    flushing, the listener) is terminated twice; the worker reconnects and
    every job succeeds."""
    app = make_app(pg_dsn)
    gate = anyio.Event()
    await defer_gated(app, gate)
    async with worker_running(app, concurrency=10):
        await log_events.event("fetched_jobs").wait()
        assert await terminate_others(pg_dsn) >= 2  # pool and listener
        gate.set()
        await log_events.event("completer_flush").wait()
        await terminate_others(pg_dsn)
        await wait_all_done(app)
    assert await final_statuses(pg_dsn) == {"succeeded": JOBS}


CLAIM = "-- The batch claim%"
FLUSH = "-- Batched completion%"
"""How the claim's and the flush's statements start (``queries.sql``)."""


async def terminate_blocked(dsn: str, statement: str) -> int:
    """Terminate the connections of the test database running ``statement``
    (a LIKE pattern) and waiting for a lock, once there are some; wait until
    they are gone. Other statements waiting for the lock (the fetcher's look
    at the schedule, which would hold the next claim back) are terminated
    too, uncounted."""
    while True:
        rows = await admin(
            dsn,
            "SELECT count(*) FILTER (WHERE gone AND query LIKE %s) AS n FROM ("
            " SELECT query, pg_terminate_backend(pid, 5000) AS gone"
            " FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock') AS blocked",
            statement,
        )
        if n := rows[0]["n"]:
            return int(n)
        await anyio.sleep(0.01)  # bounded by the hang guard


async def test_connections_terminated_inside_a_claim_and_a_flush(
    pg_dsn: str, log_events: LogEvents
) -> None:
    """A claim, then a flush, stuck behind a lock have their connection
    terminated while the statement runs: each fails, is retried on a new
    connection once the lock goes, and every job succeeds."""
    app = make_app(pg_dsn)
    gate = anyio.Event()

    @app.task(name="work")
    async def work(i: int) -> int:
        await gate.wait()
        return i

    async with worker_running(app, concurrency=10):
        async with await connect(pg_dsn, autocommit=False) as locker:
            await locker.execute("LOCK TABLE pa_jobs IN ACCESS EXCLUSIVE MODE")
            assert await terminate_blocked(pg_dsn, CLAIM) == 1
            await log_events.event("fetch_error").wait()
            await locker.rollback()
        await work.batch_defer_async(*({"i": i} for i in range(20)))
        while True:  # bounded by the hang guard
            doing = await app.job_manager.list_jobs_async(status=Status.DOING)
            if len(doing) == 10:
                break
            await anyio.sleep(0.02)
        async with await connect(pg_dsn, autocommit=False) as locker:
            await locker.execute("SELECT id FROM pa_jobs FOR UPDATE")
            gate.set()  # the outcomes' write waits for the rows
            assert await terminate_blocked(pg_dsn, FLUSH) == 1
            await log_events.event("completer_write_error").wait()
            await locker.rollback()
        await wait_all_done(app, 20)
    assert await final_statuses(pg_dsn) == {"succeeded": 20}


async def test_claim_and_flush_time_out_behind_a_table_lock(
    pg_dsn: str, log_events: LogEvents
) -> None:
    """With a short statement_timeout, a claim and a flush stuck behind a
    table lock fail and are retried; once the lock goes, every job succeeds."""
    app = make_app(pg_dsn, options="-c statement_timeout=200 -c lock_timeout=100")
    gate = anyio.Event()
    await defer_gated(app, gate)
    async with worker_running(app, concurrency=10):
        await log_events.event("fetched_jobs").wait()
        async with await connect(pg_dsn, autocommit=False) as locker:
            await locker.execute("LOCK TABLE pa_jobs IN ACCESS EXCLUSIVE MODE")
            gate.set()  # the running jobs end: their outcomes cannot be written
            await log_events.event("completer_write_error").wait()
            await log_events.event("fetch_error").wait()
            await locker.rollback()
        await wait_all_done(app)
    assert await final_statuses(pg_dsn) == {"succeeded": JOBS}


async def test_completer_failing_then_recovering(
    pg_dsn: str, log_events: LogEvents
) -> None:
    """A completer whose writes fail many times in a row (the jobs' rows are
    locked) keeps the outcomes and writes them once the database lets it."""
    app = make_app(pg_dsn, options="-c lock_timeout=50")
    gate = anyio.Event()
    await defer_gated(app, gate, n=10)
    async with worker_running(app, concurrency=10):
        while len(await app.job_manager.list_jobs_async(status=Status.DOING)) < 10:
            await log_events.event("fetched_jobs").wait()
            log_events.events.pop("fetched_jobs")
        async with await connect(pg_dsn, autocommit=False) as locker:
            await locker.execute("SELECT id FROM pa_jobs FOR UPDATE")
            gate.set()
            for _ in range(5):  # five failed writes in a row
                await log_events.event("completer_write_error").wait()
                log_events.events.pop("completer_write_error")
            await locker.rollback()
        await wait_all_done(app, 10)
    assert await final_statuses(pg_dsn) == {"succeeded": 10}
    assert "completer_outcome_replaced" not in log_events.seen


async def test_pruned_worker_row(pg_dsn: str, log_events: LogEvents) -> None:
    """A running worker whose row is deleted registers again under its id,
    and its jobs' outcomes are written."""
    app = make_app(pg_dsn)
    gate = anyio.Event()
    await defer_gated(app, gate, n=20)
    async with worker_running(app, concurrency=5):
        await log_events.event("fetched_jobs").wait()
        await admin(pg_dsn, "DELETE FROM pa_workers")
        await log_events.event("heartbeat_register_again").wait()
        gate.set()
        await wait_all_done(app, 20)
    assert await final_statuses(pg_dsn) == {"succeeded": 20}


@pytest.fixture
def limited_dsn(pg_dsn: str) -> Iterator[str]:
    """The test database, as a role allowed three connections."""
    from tests.conftest import ADMIN_DSN

    role = f"pa_limited_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN CONNECTION LIMIT 3").format(
                sql.Identifier(role)
            )
        )
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for kind in ("TABLES", "SEQUENCES", "FUNCTIONS"):
            conn.execute(
                sql.SQL("GRANT ALL ON ALL {} IN SCHEMA public TO {}").format(
                    sql.SQL(kind), sql.Identifier(role)
                )
            )
    try:
        yield psycopg.conninfo.make_conninfo(pg_dsn, user=role)
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


async def test_running_out_of_server_connections(
    limited_dsn: str, pg_dsn: str, log_events: LogEvents
) -> None:
    """A worker that cannot open the connections it wants (the server's
    limit for its role is reached) logs the refusals, backs off, and runs
    every job once connections are free again."""
    app = pa.App(
        connector=pa.PsycopgConnector(limited_dsn, max_size=6),
        worker_defaults={
            "install_signal_handlers": False,
            "fetch_job_polling_interval": 0.1,
        },
    )
    gate = anyio.Event()
    await defer_gated(app, gate, n=100)
    gate.set()
    with anyio.fail_after(PG_HANG_GUARD_SECONDS):
        async with app.open_async():  # the pool's first connection
            hogs = [await connect(limited_dsn) for _ in range(2)]  # the others
            try:
                async with anyio.create_task_group() as tg:
                    worker = await tg.start(
                        functools.partial(app.run_worker, concurrency=20)
                    )
                    await log_events.event("too_many_connections").wait()
                    for hog in hogs:
                        await hog.close()
                    await wait_all_done(app, 100)
                    worker.stop()
            finally:
                for hog in hogs:
                    await hog.close()
    assert await final_statuses(pg_dsn) == {"succeeded": 100}


def test_sync_pool_replaces_connections_the_server_closed(pg_dsn: str) -> None:
    """The sync connector's idle pool connections are terminated; the next
    operations get new connections instead of failing."""
    app = make_app(pg_dsn)

    @app.task(name="work")
    def work(i: int) -> int:
        return i

    with app.open():
        work.batch_defer(*({"i": i} for i in range(4)))
        assert anyio.run(terminate_others, pg_dsn) >= 1
        work.batch_defer(*({"i": i} for i in range(4)))
        assert len(app.job_manager.list_jobs()) == 8
