"""Global limits with two workers on PostgreSQL (two apps on one database, as
two machines): the jobs record their own start and end times, so a broken
limit shows as overlapping intervals or too many starts in a period."""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING

import anyio
import pytest

import procrastinate_anyio as pa
from procrastinate_anyio import Status
from procrastinate_anyio._limits import Limit
from procrastinate_anyio.connectors import FetchParams, JobFilter
from procrastinate_anyio.connectors.postgres import connect
from tests.support import PG_HANG_GUARD_SECONDS

if TYPE_CHECKING:
    from psycopg.rows import DictRow

    from procrastinate_anyio import PsycopgConnector
    from procrastinate_anyio.connectors.postgres import AnyioConnection

pytestmark = pytest.mark.anyio

JOBS = 8


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    events = sorted(
        [(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals]
    )
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


async def run_two_workers(
    pg_dsn: str, jobs: int, **task_options: object
) -> list[tuple[float, float]]:
    """Two apps (one connector each) with the same limited task; ``jobs``
    jobs deferred at once; both workers run until every job is done."""
    intervals: list[tuple[float, float]] = []
    done = anyio.Event()
    apps = []
    for _ in range(2):
        app = pa.App(connector=pa.PsycopgConnector(pg_dsn, max_size=4))

        @app.task(name="limited", **task_options)  # type: ignore[call-overload]  # limits under test
        async def limited() -> None:
            start = time.monotonic()
            await anyio.sleep(0.05)  # the job's work: long enough to overlap
            intervals.append((start, time.monotonic()))
            if len(intervals) == jobs:
                done.set()

        apps.append(app)
    with anyio.fail_after(PG_HANG_GUARD_SECONDS):
        async with (
            apps[0].open_async(),
            apps[1].open_async(),
            anyio.create_task_group() as tg,
        ):
            workers = [
                await tg.start(
                    functools.partial(
                        app.run_worker,
                        concurrency=4,
                        fetch_job_polling_interval=0.1,
                        install_signal_handlers=False,
                    )
                )
                for app in apps
            ]
            await apps[0].get_task("limited").batch_defer_async(*[{}] * jobs)
            await done.wait()
            for worker in workers:
                worker.stop()
    return intervals


async def test_concurrency_limit_holds_across_workers(pg_dsn: str) -> None:
    """Eight slots on two workers, a limit of two: never more than two jobs
    of the task run at once, and every job runs."""
    intervals = await run_two_workers(pg_dsn, JOBS, concurrency_limit=2)

    assert len(intervals) == JOBS
    assert most_at_once(intervals) == 2


async def test_rate_limit_holds_across_workers(pg_dsn: str) -> None:
    """A limit of 3 starts per second, two workers: no second holds more than
    three starts (with 0.1 s for the clocks of client and server)."""
    intervals = await run_two_workers(pg_dsn, 6, rate_limit="3/s")
    starts = sorted(start for start, _ in intervals)

    assert len(starts) == 6
    assert all(
        later - first >= 0.9 for first, later in zip(starts, starts[3:], strict=False)
    )


async def waiting_for_a_lock(conn: AnyioConnection[DictRow]) -> bool:
    cursor = await conn.execute(
        "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    )
    row = await cursor.fetchone()
    return row is not None and row["n"] > 0


async def test_a_claim_that_waited_for_the_lock_counts_what_it_waited_for(
    pg_dsn: str, pg_connector: PsycopgConnector
) -> None:
    """The limited claim counts a limit's jobs after it holds the limit's
    lock: a claim committed while it waited is counted (each statement of
    pa_claim_limited takes its own snapshot), so the limit holds."""
    limit = Limit(scope="task", names=("limited",), concurrency=1)
    app = pa.App(connector=pg_connector)

    @app.task(name="limited")
    async def limited() -> None: ...

    await limited.batch_defer_async({}, {})
    claims: list[list[pa.Job]] = []

    async def claim() -> None:
        claims.append(
            await pg_connector.job_fetch_many(
                FetchParams(worker_id=1, queues=None, limit=10, limits=(limit,))
            )
        )

    with anyio.fail_after(PG_HANG_GUARD_SECONDS):
        async with (
            await connect(pg_dsn) as other,
            await connect(pg_dsn) as watcher,
            anyio.create_task_group() as tg,
            # Another worker's claim, in its transaction: it holds the lock
            # and has made the second job doing, not yet committed (a count
            # from before the lock would let the first one be claimed).
            other.transaction(),
        ):
            await other.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                ("pa_limit:" + limit.key,),
            )
            await other.execute(
                "UPDATE pa_jobs SET status = 'doing', started_at = now()"
                " WHERE id = (SELECT max(id) FROM pa_jobs)"
            )
            tg.start_soon(claim)
            # Polls a DB condition, under the hang guard.
            while not await waiting_for_a_lock(watcher):  # noqa: ASYNC110
                await anyio.sleep(0.01)

    assert claims == [[]]
    doing = await pg_connector.job_list(JobFilter(status=Status.DOING))
    assert len(doing) == 1
