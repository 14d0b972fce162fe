"""Genuine Procrastinate 3.x rows in a test database, for the tests of
``move-from-procrastinate``: its own schema (``procrastinate``'s schema
manager) and its own App, connectors and job manager write them. Only tests
import procrastinate; the library reads its tables with SQL.

Procrastinate runs on asyncio alone: its async calls run in a thread of
their own, with their own event loop, whatever loop the test runs on.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import anyio
import attrs
import procrastinate
import psycopg

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

TICK = 1_900_000_000
"""The timestamp of the periodic tick Procrastinate deferred."""


def install_schema(dsn: str) -> None:
    """Apply Procrastinate's own schema to the database of ``dsn``."""
    app = procrastinate.App(
        connector=procrastinate.SyncPsycopgConnector(
            conninfo=dsn, min_size=0, max_size=2
        )
    )
    with app.open():
        app.schema_manager.apply_schema()


def in_thread(func: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``func`` on asyncio in a thread of its own; return its result."""
    outcome: list[Any] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(anyio.run(func, backend="asyncio"))
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return outcome[0]


def make_app(dsn: str) -> procrastinate.App:
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=dsn, min_size=0, max_size=2)
    )

    @app.task(name="work")
    def work(n: int) -> None: ...

    @app.task(name="tick")
    def tick(timestamp: int) -> None: ...

    return app


@attrs.frozen
class Backlog:
    """The ids of the Procrastinate jobs that :func:`fill` wrote."""

    plain: int
    other_queue: int
    locked: int
    queueing_locked: int
    later: int
    retried: int
    doing: int
    behind_doing: int
    periodic: int

    @property
    def movable(self) -> list[int]:
        """The jobs a move takes, in id order."""
        return sorted(
            [
                self.plain,
                self.other_queue,
                self.locked,
                self.queueing_locked,
                self.later,
                self.retried,
                self.periodic,
            ]
        )


def fill(dsn: str) -> Backlog:
    """Defer a varied backlog with Procrastinate: plain, other queue and
    priority, a lock, a queueing lock, scheduled in an hour, retried once
    (attempts 1), one running (``doing``, its worker gone) with a job waiting
    behind its lock, and a periodic tick."""

    async def main() -> Backlog:
        app = make_app(dsn)
        work = app.tasks["work"]
        async with app.open_async():
            manager = app.job_manager
            doing = await work.configure(lock="D", priority=100).defer_async(n=7)
            retried = await work.configure(priority=50).defer_async(n=6)
            worker_id = await manager.register_worker()
            running = await manager.fetch_job(queues=None, worker_id=worker_id)
            assert running is not None
            assert running.id == doing
            failing = await manager.fetch_job(queues=None, worker_id=worker_id)
            assert failing is not None
            assert failing.id == retried
            await manager.retry_job(failing)
            await manager.unregister_worker(worker_id)
            plain = await work.defer_async(n=1)
            other_queue = await work.configure(queue="other", priority=5).defer_async(
                n=2
            )
            locked = await work.configure(lock="L").defer_async(n=3)
            queueing_locked = await work.configure(queueing_lock="Q").defer_async(n=4)
            later = await work.configure(schedule_in={"hours": 1}).defer_async(n=5)
            behind_doing = await work.configure(lock="D").defer_async(n=8)
            periodic = await manager.defer_periodic_job(
                procrastinate.jobs.Job(
                    id=None,
                    queue="default",
                    lock=None,
                    queueing_lock=None,
                    task_name="tick",
                    task_kwargs={"timestamp": TICK},
                ),
                periodic_id="",
                defer_timestamp=TICK,
            )
            assert periodic is not None
        return Backlog(
            plain=plain,
            other_queue=other_queue,
            locked=locked,
            queueing_locked=queueing_locked,
            later=later,
            retried=retried,
            doing=doing,
            behind_doing=behind_doing,
            periodic=periodic,
        )

    result: Backlog = in_thread(main)
    return result


def register_worker(dsn: str) -> int:
    """A Procrastinate worker row, heartbeating now (as a running worker's)."""

    async def main() -> int:
        app = make_app(dsn)
        async with app.open_async():
            worker_id: int = await app.job_manager.register_worker()
            return worker_id

    result: int = in_thread(main)
    return result


def defer(dsn: str, **configure: Any) -> int:
    """One ``work`` job deferred by Procrastinate."""

    async def main() -> int:
        app = make_app(dsn)
        async with app.open_async():
            job_id: int = (
                await app.tasks["work"].configure(**configure).defer_async(n=0)
            )
            return job_id

    result: int = in_thread(main)
    return result


def rows(dsn: str) -> dict[int, dict[str, Any]]:
    """Procrastinate's job rows by id (read with SQL: what is left there)."""
    with psycopg.connect(dsn) as conn:
        cursor = conn.cursor(row_factory=psycopg.rows.dict_row)
        cursor.execute("SELECT * FROM procrastinate_jobs ORDER BY id")
        return {row["id"]: row for row in cursor.fetchall()}
