"""Conformance: ``periodic_defer``. Each tick of a periodic task is deferred
once, however many workers try; old ticks are forgotten; a taken queueing
lock leaves the tick free for a later attempt."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import pytest

from procrastinate_anyio import AlreadyEnqueued, Status
from procrastinate_anyio.connectors import JobFilter, PeriodicDeferParams

from .conftest import to_defer

if TYPE_CHECKING:
    from procrastinate_anyio.connectors import AsyncConnector

    from .conftest import JobFactory

pytestmark = pytest.mark.anyio

TICK = 1_900_000_000


def tick_params(
    tick: int,
    *,
    task_name: str = "cleanup",
    periodic_id: str = "",
    keep_after: int = 0,
    **options: Any,
) -> PeriodicDeferParams:
    return PeriodicDeferParams(
        job=to_defer(task_name=task_name, args={"timestamp": tick}, **options),
        periodic_id=periodic_id,
        defer_timestamp=tick,
        keep_after=keep_after,
    )


async def all_jobs(connector: AsyncConnector) -> list[tuple[str, Any]]:
    return [
        (job.task_name, job.task_kwargs["timestamp"])
        for job in await connector.job_list(JobFilter())
    ]


async def test_tick_deferred_once(connector: AsyncConnector, jobs: JobFactory) -> None:
    """The first call defers the tick's job; the next ones return None, even
    after that job ran and was deleted."""
    job_id = await connector.periodic_defer(tick_params(TICK))

    assert job_id is not None
    assert await connector.periodic_defer(tick_params(TICK)) is None
    job = await jobs.get(job_id)
    assert (job.task_name, job.task_kwargs, job.status) == (
        "cleanup",
        {"timestamp": TICK},
        Status.TODO,
    )
    assert await jobs.fetch() == [job_id]
    await jobs.finish(job_id, delete_job=True)
    assert await connector.periodic_defer(tick_params(TICK)) is None
    assert await all_jobs(connector) == []


async def test_concurrent_deferrers(connector: AsyncConnector) -> None:
    """Of many concurrent attempts to defer one tick, exactly one does."""
    results: list[int | None] = []

    async def defer() -> None:
        results.append(await connector.periodic_defer(tick_params(TICK)))

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(defer)

    assert len([r for r in results if r is not None]) == 1
    assert await all_jobs(connector) == [("cleanup", TICK)]


async def test_ticks_are_told_apart(connector: AsyncConnector) -> None:
    """A tick is one task, one periodic_id and one timestamp."""
    assert await connector.periodic_defer(tick_params(TICK)) is not None

    assert await connector.periodic_defer(tick_params(TICK + 60)) is not None
    assert await connector.periodic_defer(tick_params(TICK, periodic_id="other"))
    assert await connector.periodic_defer(tick_params(TICK, task_name="other"))

    assert len(await all_jobs(connector)) == 4


async def test_old_ticks_are_forgotten(connector: AsyncConnector) -> None:
    """Ticks of the same task and periodic_id older than ``keep_after`` are
    forgotten; younger ones, and other schedules' ticks, are kept."""
    assert await connector.periodic_defer(tick_params(TICK)) is not None
    assert await connector.periodic_defer(tick_params(TICK + 60)) is not None
    assert await connector.periodic_defer(tick_params(TICK, periodic_id="a"))
    assert await connector.periodic_defer(tick_params(TICK, task_name="other"))

    assert await connector.periodic_defer(tick_params(TICK + 120, keep_after=TICK + 30))

    assert await connector.periodic_defer(tick_params(TICK + 60)) is None
    assert await connector.periodic_defer(tick_params(TICK, periodic_id="a")) is None
    assert await connector.periodic_defer(tick_params(TICK, task_name="other")) is None
    assert await connector.periodic_defer(tick_params(TICK)) is not None


async def test_queueing_lock_taken(connector: AsyncConnector, jobs: JobFactory) -> None:
    """A tick whose queueing lock is taken raises AlreadyEnqueued, writes
    nothing, and can be deferred once the lock is free."""
    waiting = await jobs.defer(queueing_lock="Q")

    with pytest.raises(AlreadyEnqueued):
        await connector.periodic_defer(tick_params(TICK, queueing_lock="Q"))

    assert len(await connector.job_list(JobFilter())) == 1
    await jobs.run(waiting)
    job_id = await connector.periodic_defer(tick_params(TICK, queueing_lock="Q"))
    assert job_id is not None
    assert (await jobs.get(job_id)).queueing_lock == "Q"


async def test_tick_options(connector: AsyncConnector, jobs: JobFactory) -> None:
    """The tick's job has its queue and priority, and waits behind the doing
    job of its lock."""
    doing = await jobs.defer(lock="L")
    assert await jobs.fetch() == [doing]

    job_id = await connector.periodic_defer(
        tick_params(TICK, queue="periodic", priority=4, lock="L")
    )

    assert job_id is not None
    job = await jobs.get(job_id)
    assert (job.queue, job.priority, job.lock) == ("periodic", 4, "L")
    assert await jobs.fetch() == []
    await jobs.finish(doing)
    assert await jobs.fetch() == [job_id]
