"""Tests of the slots' sync-task threads: a thread per slot, results handed
back to the event loop in batches."""

from __future__ import annotations

import contextvars
import functools
import threading

import anyio
import anyio.from_thread
import pytest

from procrastinate_anyio.worker._threads import SyncThreads
from tests.support import HANG_GUARD_SECONDS

pytestmark = pytest.mark.anyio

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


async def test_calls_run_in_the_slot_thread_one_after_the_other() -> None:
    thread = SyncThreads().slot_thread()
    try:
        idents = [await thread.run_sync(threading.get_ident) for _ in range(3)]
    finally:
        thread.close()
    assert len(set(idents)) == 1
    assert idents[0] != threading.get_ident()


async def test_result_error_and_context() -> None:
    thread = SyncThreads().slot_thread()
    try:
        VAR.set("from the task")
        assert await thread.run_sync(VAR.get) == "from the task"

        def fails() -> None:
            raise KeyError("boom")

        with pytest.raises(KeyError, match="boom") as caught:
            await thread.run_sync(fails)
        assert caught.traceback[-1].name == "fails"  # raised where it was
    finally:
        thread.close()


async def test_a_cancelled_slot_waits_for_its_call() -> None:
    """A thread cannot be cancelled: the slot waits for the call to return,
    then the cancellation goes on."""
    thread = SyncThreads().slot_thread()
    entered = threading.Event()
    release = threading.Event()
    returned = []

    def blocks() -> None:
        entered.set()
        release.wait(HANG_GUARD_SECONDS)
        returned.append(True)

    try:
        with anyio.fail_after(HANG_GUARD_SECONDS):
            with anyio.CancelScope() as scope:

                async def cancel_once_entered() -> None:
                    await anyio.to_thread.run_sync(entered.wait)
                    scope.cancel()
                    release.set()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(cancel_once_entered)
                    await thread.run_sync(blocks)
                    await anyio.lowlevel.checkpoint()  # where the cancel lands
                    pytest.fail("not cancelled")
    finally:
        thread.close()
    assert scope.cancelled_caught
    assert returned == [True]


async def test_many_slots_at_once() -> None:
    """Results come back in batches, each to its own slot."""
    threads = SyncThreads()
    results: dict[int, list[int]] = {}

    async def slot(n: int) -> None:
        thread = threads.slot_thread()
        try:
            results[n] = [
                await thread.run_sync(functools.partial(int, n * 1000 + i))
                for i in range(50)
            ]
        finally:
            thread.close()

    with anyio.fail_after(HANG_GUARD_SECONDS):
        async with anyio.create_task_group() as tg:
            for n in range(40):
                tg.start_soon(slot, n)
    assert results == {n: [n * 1000 + i for i in range(50)] for n in range(40)}


async def test_from_thread_calls_need_no_token() -> None:
    """Like anyio's own worker threads: a task may call back into the loop."""
    thread = SyncThreads().slot_thread()
    loop_thread = threading.get_ident()
    try:
        assert (
            await thread.run_sync(
                lambda: anyio.from_thread.run_sync(threading.get_ident)
            )
            == loop_thread
        )
        assert await thread.run_sync(
            lambda: anyio.from_thread.run(anyio.to_thread.run_sync, threading.get_ident)
        ) not in (loop_thread, None)
    finally:
        thread.close()


async def test_close_ends_the_thread() -> None:
    thread = SyncThreads().slot_thread()
    ident = await thread.run_sync(threading.get_ident)
    (worker,) = [t for t in threading.enumerate() if t.ident == ident]
    thread.close()
    await anyio.to_thread.run_sync(worker.join, HANG_GUARD_SECONDS)
    assert not worker.is_alive()
