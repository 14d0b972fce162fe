"""Pausing a queue under a running worker, on PostgreSQL: its jobs wait, the
other queues go on, and resuming wakes the worker at once (a notification:
the polling interval is an hour here)."""

from __future__ import annotations

import functools

import anyio
import pytest

import procrastinate_anyio as pa
from procrastinate_anyio import Status
from tests.support import PG_HANG_GUARD_SECONDS

pytestmark = pytest.mark.anyio


async def test_worker_skips_a_paused_queue_until_resumed(
    pg_connector: pa.PsycopgConnector,
) -> None:
    """A job of a paused queue stays todo while another queue's job runs; once
    the queue is resumed, the idle worker runs it without waiting for a poll."""
    app = pa.App(connector=pg_connector)
    ran: list[str] = []
    fast_done, slow_done = anyio.Event(), anyio.Event()

    @app.task(name="fast", queue="fast")
    async def fast() -> None:
        ran.append("fast")
        fast_done.set()

    @app.task(name="slow", queue="slow")
    async def slow() -> None:
        ran.append("slow")
        slow_done.set()

    assert await app.job_manager.pause_queue_async("slow")
    slow_id = await slow.defer_async()  # deferring to a paused queue works
    with anyio.fail_after(PG_HANG_GUARD_SECONDS):
        async with anyio.create_task_group() as tg:
            worker = await tg.start(
                functools.partial(
                    app.run_worker,
                    concurrency=2,
                    fetch_job_polling_interval=3600,
                    install_signal_handlers=False,
                )
            )
            await fast.defer_async()
            await fast_done.wait()
            slow_job = await app.job_manager.get_job_async(slow_id)
            assert slow_job is not None
            assert slow_job.status is Status.TODO
            assert await app.job_manager.resume_queue_async("slow")
            await slow_done.wait()
            worker.stop()

    assert ran == ["fast", "slow"]
    assert await app.job_manager.list_paused_queues_async() == []
