"""Conformance: paused queues (``queue_pause``, ``queue_resume``,
``queue_list_paused``) and what the claim makes of them, async and sync."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

import anyio
import pytest

from procrastinate_anyio.connectors import FetchParams, Notification
from tests.support import HANG_GUARD_SECONDS

if TYPE_CHECKING:
    from procrastinate_anyio.connectors import AsyncConnector

    from .conftest import JobFactory, SyncDriver, SyncJobFactory

pytestmark = pytest.mark.anyio


async def test_a_paused_queue_is_not_claimed(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """While its queue is paused, a job stays todo; other queues go on, and
    deferring to the paused queue still works."""
    assert await connector.queue_pause("slow")
    waiting = await jobs.defer(queue="slow")
    other = await jobs.defer(queue="fast")

    assert await jobs.fetch() == [other]
    assert await jobs.fetch(queues=["slow", "fast"]) == []
    assert await connector.queue_resume("slow")
    assert await jobs.fetch(queues=["slow"]) == [waiting]


async def test_pause_and_resume_say_what_changed(connector: AsyncConnector) -> None:
    """Pausing twice, or resuming a queue that is not paused, changes nothing
    and says so; the list is by name."""
    assert [await connector.queue_pause(q) for q in ("b", "a", "b")] == [
        True,
        True,
        False,
    ]
    assert [p.name for p in await connector.queue_list_paused()] == ["a", "b"]
    assert [await connector.queue_resume(q) for q in ("a", "a", "never")] == [
        True,
        False,
        False,
    ]
    (paused,) = await connector.queue_list_paused()
    assert paused.name == "b"
    assert paused.paused_at.utcoffset() is not None


async def test_a_paused_queue_does_not_set_the_next_wake_up(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """An idle worker does not wake for a scheduled job of a paused queue."""
    soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    await jobs.defer(queue="slow", scheduled_at=soon)
    await connector.queue_pause("slow")

    assert await connector.job_next_scheduled_at(None) is None
    await connector.queue_resume("slow")
    assert await connector.job_next_scheduled_at(None) is not None


async def test_resume_wakes_the_listeners(connector: AsyncConnector) -> None:
    """Resuming a queue notifies its listeners that its jobs may be ready."""
    heard: list[Notification] = []
    woken = anyio.Event()

    def on_notification(notification: Notification) -> None:
        heard.append(notification)
        woken.set()

    await connector.queue_pause("slow")
    with anyio.fail_after(HANG_GUARD_SECONDS):
        async with anyio.create_task_group() as tg:
            await tg.start(connector.listen, on_notification)
            await connector.queue_resume("slow")
            await woken.wait()
            tg.cancel_scope.cancel()

    assert heard == [Notification(kind="defer", queues=("slow",))]


def test_sync_twins(sync_driver: SyncDriver, sync_jobs: SyncJobFactory) -> None:
    """The sync protocol pauses, lists and resumes the same way, and the async
    claim sees it."""
    connector = sync_driver.connector
    waiting = sync_jobs.defer(queue="slow")

    assert connector.queue_pause("slow")
    assert not connector.queue_pause("slow")
    assert [p.name for p in connector.queue_list_paused()] == ["slow"]
    assert sync_driver.run_async(_claim_all) == []
    assert connector.queue_resume("slow")
    assert connector.queue_list_paused() == []
    assert sync_driver.run_async(_claim_all) == [waiting]


async def _claim_all(connector: AsyncConnector) -> list[int]:
    jobs = await connector.job_fetch_many(
        FetchParams(worker_id=1, queues=None, limit=10)
    )
    return [job.id for job in jobs]
