"""Tests of the App's entry points in Procrastinate's styles: ``run_worker``
from sync and async code, ``open``/``close`` with and without ``with``, the
sync API inside a worker's jobs, and a native asyncio cancel of the worker's
task."""

from __future__ import annotations

import asyncio
import functools
import threading
from typing import Any

import anyio
import pytest

import procrastinate_anyio as pa
from procrastinate_anyio import App, AppNotOpen, InMemoryConnector, Status
from tests.support import HANG_GUARD_SECONDS

from .conftest import stored_jobs

pytestmark = pytest.mark.anyio

WORKER = {"install_signal_handlers": False, "shutdown_graceful_timeout": 5}


@pytest.fixture
def app(connector: InMemoryConnector) -> App:
    return App(connector=connector, worker_defaults=WORKER)


def add_task(app: App) -> Any:
    @app.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    return add


class TestRunWorker:
    def test_sync_call_runs_to_the_end(
        self, app: App, connector: InMemoryConnector
    ) -> None:
        """Called with no event loop, ``run_worker`` runs the worker, blocking,
        and returns None once it stopped."""
        add = add_task(app)
        with app.open():
            add.defer(a=1, b=2)

        returned = app.run_worker(wait=False)

        assert returned is None
        assert [(j.status, j.result) for j in stored_jobs(connector)] == [
            (Status.SUCCEEDED, 3)
        ]
        assert not connector.is_open

    def test_sync_call_from_a_thread(
        self, app: App, connector: InMemoryConnector
    ) -> None:
        """A thread with no event loop (a sync task's, a script's) can run a
        worker the same way."""
        add = add_task(app)
        with app.open():
            add.defer(a=2, b=2)
        thread = threading.Thread(target=functools.partial(app.run_worker, wait=False))

        thread.start()
        thread.join(HANG_GUARD_SECONDS)

        assert not thread.is_alive()
        assert stored_jobs(connector)[0].result == 4

    async def test_awaitable_in_async_code(
        self, app: App, connector: InMemoryConnector
    ) -> None:
        """In async code ``run_worker`` returns the coroutine of
        ``run_worker_async``."""
        add = add_task(app)
        async with app.open_async():
            await add.defer_async(a=3, b=4)

        with anyio.fail_after(HANG_GUARD_SECONDS):
            await app.run_worker(wait=False)

        assert stored_jobs(connector)[0].result == 7

    async def test_task_group_start(self, app: App) -> None:
        """``tg.start(app.run_worker)`` and ``tg.start(app.run_worker_async)``
        return the running worker."""
        for entry_point in (app.run_worker, app.run_worker_async):
            with anyio.fail_after(HANG_GUARD_SECONDS):
                async with anyio.create_task_group() as tg:
                    worker = await tg.start(entry_point)
                    assert isinstance(worker, pa.Worker)
                    worker.stop()

    def test_anyio_run(self, app: App, connector: InMemoryConnector) -> None:
        """``anyio.run(app.run_worker)`` runs the worker inside the loop."""
        add = add_task(app)
        with app.open():
            add.defer(a=5, b=5)

        anyio.run(functools.partial(app.run_worker, wait=False))

        assert stored_jobs(connector)[0].result == 10


class TestOpenClose:
    def test_bare_open_and_close(self, app: App, connector: InMemoryConnector) -> None:
        """``app.open()`` opens until ``app.close()``, without a block."""
        add = add_task(app)

        assert app.open() is app
        add.defer(a=1, b=1)
        app.close()

        assert len(stored_jobs(connector)) == 1
        with pytest.raises(AppNotOpen):
            add.defer(a=1, b=1)

    def test_with_open_and_nesting(self, app: App) -> None:
        """``with app.open():`` closes at the end; an inner block leaves the
        connection to the outer one."""
        add = add_task(app)
        with app.open():
            with app.open():
                add.defer(a=1, b=1)
            add.defer(a=1, b=1)  # still open: the outer block owns it
        with pytest.raises(AppNotOpen):
            add.defer(a=1, b=1)

    def test_with_app(self, app: App) -> None:
        """``with app:`` after a bare ``open()`` closes at the end."""
        add = add_task(app)
        app.open()
        with app:
            add.defer(a=1, b=1)
        with pytest.raises(AppNotOpen):
            add.defer(a=1, b=1)

    async def test_await_open_async_and_close_async(
        self, app: App, connector: InMemoryConnector
    ) -> None:
        """``await app.open_async()`` opens until ``await app.close_async()``."""
        add = add_task(app)

        assert await app.open_async() is app
        assert connector.is_open
        await add.defer_async(a=1, b=1)
        await app.close_async()

        assert not connector.is_open

    async def test_async_with_app(self, app: App, connector: InMemoryConnector) -> None:
        """``async with app:`` after ``await app.open_async()`` closes at the
        end; an ``open_async`` block inside an open app leaves it open."""
        await app.open_async()
        async with app:
            async with app.open_async():
                pass
            assert connector.is_open
        assert not connector.is_open

    async def test_sync_api_once_async_open(
        self, app: App, connector: InMemoryConnector
    ) -> None:
        """With the async connector open, the sync API works without
        ``app.open()``, and stops working once it is closed."""
        add = add_task(app)
        async with app.open_async():
            add.defer(a=1, b=1)
            assert len(app.job_manager.list_jobs()) == 1
        with pytest.raises(AppNotOpen):
            add.defer(a=1, b=1)


class TestSyncApiInJobs:
    @pytest.mark.parametrize("sync_parent", [True, False], ids=["sync", "async"])
    async def test_task_defers_with_the_sync_api(
        self, app: App, connector: InMemoryConnector, sync_parent: bool
    ) -> None:
        """A sync or async task can defer another with ``task.defer()`` (and
        read jobs with the sync job manager) inside the worker."""
        add = add_task(app)
        seen: list[int] = []

        def body() -> None:
            add.defer(a=20, b=22)
            seen.append(len(app.job_manager.list_jobs()))

        if sync_parent:

            @app.task(name="parent")
            def parent() -> None:
                body()

        else:

            @app.task(name="parent")
            async def parent() -> None:
                body()

        async with app.open_async():
            await parent.defer_async()
            with anyio.fail_after(HANG_GUARD_SECONDS):
                await app.run_worker_async(wait=False)

        assert seen == [2]
        assert [(j.task_name, j.status, j.result) for j in stored_jobs(connector)] == [
            ("parent", Status.SUCCEEDED, None),
            ("add", Status.SUCCEEDED, 42),
        ]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_native_asyncio_cancel_is_a_graceful_stop(
    app: App, connector: InMemoryConnector
) -> None:
    """``asyncio.create_task(app.run_worker_async())`` then ``task.cancel()``
    (the FastAPI idiom) lets the running job finish, like a cancel of an
    AnyIO scope, then the task ends cancelled."""
    started, release = anyio.Event(), anyio.Event()

    @app.task(name="slow")
    async def slow() -> str:
        started.set()
        await release.wait()
        return "done"

    async with app.open_async():
        await slow.defer_async()
        with anyio.fail_after(HANG_GUARD_SECONDS):
            worker_task = asyncio.create_task(app.run_worker_async())
            await started.wait()
            worker_task.cancel()
            await anyio.wait_all_tasks_blocked()
            assert not worker_task.done()  # stopping: waits for the job
            release.set()
            with pytest.raises(asyncio.CancelledError):
                await worker_task

    assert [(j.status, j.result) for j in stored_jobs(connector)] == [
        (Status.SUCCEEDED, "done")
    ]
