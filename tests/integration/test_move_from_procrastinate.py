"""Moving Procrastinate's waiting jobs into ours
(``job_manager.move_from_procrastinate_async``), on genuine Procrastinate 3.x
tables: its own schema, rows written by its own App and job manager
(``tests/procrastinate_tables.py``). Then our worker runs the moved jobs.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import anyio
import psycopg
import pytest

import procrastinate_anyio as pa
from procrastinate_anyio._job import JobToDefer
from procrastinate_anyio.connectors import PeriodicDeferParams
from tests import procrastinate_tables
from tests.support import PG_HANG_GUARD_SECONDS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.anyio


@pytest.fixture
def backlog(pg_dsn: str) -> procrastinate_tables.Backlog:
    """Procrastinate's schema next to ours, with its backlog written by it."""
    procrastinate_tables.install_schema(pg_dsn)
    return procrastinate_tables.fill(pg_dsn)


@pytest.fixture
async def app(pg_dsn: str) -> AsyncIterator[pa.App]:
    """Our app, with tasks of the same names as Procrastinate's."""
    app = pa.App(connector=pa.PsycopgConnector(pg_dsn))
    app.ran = []  # type: ignore[attr-defined]  # what the tasks saw

    @app.task(name="work", pass_context=True)
    async def work(context: pa.JobContext, n: int) -> None:
        app.ran.append((n, context.job.attempts))  # type: ignore[attr-defined]

    @app.task(name="tick")
    async def tick(timestamp: int) -> None:
        app.ran.append(("tick", timestamp))  # type: ignore[attr-defined]

    async with app.open_async():
        yield app


async def test_dry_run_writes_nothing(
    app: pa.App, pg_dsn: str, backlog: procrastinate_tables.Backlog
) -> None:
    """--dry-run reports what would move and changes neither side."""
    before = procrastinate_tables.rows(pg_dsn)

    report = await app.job_manager.move_from_procrastinate_async(dry_run=True)

    assert report.dry_run
    assert list(report.moved) == backlog.movable
    assert report.new_ids == ()
    assert (report.scheduled, report.periodic_ticks, report.doing) == (1, 1, 1)
    assert [skip.job_id for skip in report.skipped] == [backlog.behind_doing]
    assert report.summary().startswith("Would move 7 job(s) (1 scheduled)")
    assert await app.job_manager.list_jobs_async() == []
    assert procrastinate_tables.rows(pg_dsn) == before


async def test_move_then_run(
    app: pa.App, pg_dsn: str, backlog: procrastinate_tables.Backlog
) -> None:
    """The waiting jobs move with everything they had, leave Procrastinate's
    table, and our worker runs the due ones; the periodic tick is not deferred
    again; a second move finds nothing."""
    before = procrastinate_tables.rows(pg_dsn)

    report = await app.job_manager.move_from_procrastinate_async()

    assert not report.dry_run
    assert list(report.moved) == backlog.movable
    assert (report.scheduled, report.periodic_ticks, report.doing) == (1, 1, 1)
    assert [skip.job_id for skip in report.skipped] == [backlog.behind_doing]
    assert "lock 'D' is held by a running Procrastinate job" in report.skipped[0].reason
    assert report.summary().startswith("Moved 7 job(s) (1 scheduled) and 1 periodic")
    # Left there: the running job and the one behind its lock.
    assert sorted(procrastinate_tables.rows(pg_dsn)) == [
        backlog.doing,
        backlog.behind_doing,
    ]
    ours = {job.id: job for job in await app.job_manager.list_jobs_async()}
    assert sorted(ours) == sorted(report.new_ids)
    for old_id, new_id in zip(report.moved, report.new_ids, strict=True):
        theirs, job = before[old_id], ours[new_id]
        assert (
            job.queue,
            job.task_name,
            dict(job.task_kwargs),
            job.priority,
            job.lock,
            job.queueing_lock,
            job.scheduled_at,
            job.attempts,
            job.status,
        ) == (
            theirs["queue_name"],
            theirs["task_name"],
            theirs["args"],
            theirs["priority"],
            theirs["lock"],
            theirs["queueing_lock"],
            theirs["scheduled_at"],
            theirs["attempts"],
            pa.Status.TODO,
        )
    moved_to = dict(zip(report.moved, report.new_ids, strict=True))
    assert ours[moved_to[backlog.retried]].attempts == 1

    with anyio.fail_after(PG_HANG_GUARD_SECONDS):
        await app.run_worker_async(wait=False, install_signal_handlers=False)

    assert sorted(app.ran, key=str) == sorted(  # type: ignore[attr-defined]
        [(1, 0), (2, 0), (3, 0), (4, 0), (6, 1), ("tick", procrastinate_tables.TICK)],
        key=str,
    )
    later = await app.job_manager.get_job_async(moved_to[backlog.later])
    assert later is not None
    assert later.status is pa.Status.TODO
    tick = JobToDefer(
        queue="default",
        task_name="tick",
        args_json=json.dumps({"timestamp": procrastinate_tables.TICK}),
    )
    already = PeriodicDeferParams(
        job=tick,
        periodic_id="",
        defer_timestamp=procrastinate_tables.TICK,
        keep_after=0,
    )
    assert await app.job_manager.connector.periodic_defer(already) is None

    again = await app.job_manager.move_from_procrastinate_async()

    assert (again.moved, again.periodic_ticks) == ((), 0)
    assert [skip.job_id for skip in again.skipped] == [backlog.behind_doing]


async def test_active_worker_refuses(app: pa.App, pg_dsn: str) -> None:
    """A Procrastinate worker that heartbeated recently refuses the move,
    nothing written; ``force`` moves anyway and reports it."""
    procrastinate_tables.install_schema(pg_dsn)
    job_id = procrastinate_tables.defer(pg_dsn)
    procrastinate_tables.register_worker(pg_dsn)

    with pytest.raises(
        pa.MoveRefused, match=r"1 Procrastinate worker\(s\) heartbeated"
    ):
        await app.job_manager.move_from_procrastinate_async()
    assert sorted(procrastinate_tables.rows(pg_dsn)) == [job_id]
    assert await app.job_manager.list_jobs_async() == []

    report = await app.job_manager.move_from_procrastinate_async(force=True)

    assert (report.moved, report.active_workers) == ((job_id,), 1)
    assert procrastinate_tables.rows(pg_dsn) == {}


async def test_worker_timeout(app: pa.App, pg_dsn: str) -> None:
    """A worker is active when it heartbeated within ``worker_timeout``: one
    silent for a minute (a dead one) does not refuse the move."""
    procrastinate_tables.install_schema(pg_dsn)
    procrastinate_tables.register_worker(pg_dsn)
    with psycopg.connect(pg_dsn) as conn:
        conn.execute(
            "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 minute'"
        )

    with pytest.raises(pa.MoveRefused):
        await app.job_manager.move_from_procrastinate_async(worker_timeout=120)
    report = await app.job_manager.move_from_procrastinate_async()

    assert (report.moved, report.active_workers) == ((), 0)


async def test_queueing_lock_taken_stays(app: pa.App, pg_dsn: str) -> None:
    """A job whose queueing lock one of our waiting jobs holds is not moved:
    it stays in Procrastinate's table and the report says why."""
    procrastinate_tables.install_schema(pg_dsn)
    blocked = procrastinate_tables.defer(pg_dsn, queueing_lock="Q")
    free = procrastinate_tables.defer(pg_dsn, queueing_lock="R")
    ours = await app.configure_task("work", queueing_lock="Q").defer_async(n=0)

    report = await app.job_manager.move_from_procrastinate_async()

    assert report.moved == (free,)
    ((skip,),) = [report.skipped]
    assert skip.job_id == blocked
    assert "queueing lock 'Q' is taken by a waiting job of ours" in skip.reason
    assert sorted(procrastinate_tables.rows(pg_dsn)) == [blocked]
    assert len(await app.job_manager.list_jobs_async(queueing_lock="Q")) == 1
    assert (await app.job_manager.get_job_async(ours)) is not None


async def test_lock_joins_our_line(app: pa.App, pg_dsn: str) -> None:
    """A moved job with a lock that one of our jobs holds waits behind it."""
    procrastinate_tables.install_schema(pg_dsn)
    ours = await app.configure_task("work", lock="L").defer_async(n=10)
    theirs = procrastinate_tables.defer(pg_dsn, lock="L")

    report = await app.job_manager.move_from_procrastinate_async()

    with anyio.fail_after(PG_HANG_GUARD_SECONDS):
        await app.run_worker_async(
            wait=False, concurrency=2, install_signal_handlers=False
        )
    assert report.moved == (theirs,)
    assert app.ran == [(10, 0), (0, 0)]  # type: ignore[attr-defined]
    assert ours < report.new_ids[0]
