"""``contrib.asgi``: a worker for the duration of a block, and as an ASGI
lifespan (Starlette, driven here through the lifespan protocol itself), on a
real database, on asyncio and trio."""

from __future__ import annotations

import sys
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import psycopg
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

import procrastinate_anyio as pa
from procrastinate_anyio.contrib.asgi import WorkerFailed, lifespan, running_worker

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.requests import Request

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

pytestmark = pytest.mark.anyio


class BreakableConnector(pa.PsycopgConnector):
    """A connector whose heartbeat fails with an unexpected error once
    ``broken`` is set: a worker component that dies."""

    broken = False

    async def worker_heartbeat(self, worker_id: int) -> bool:
        if self.broken:
            raise RuntimeError("the heartbeat broke")
        return await super().worker_heartbeat(worker_id)


def count(dsn: str, query: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def workers(dsn: str) -> int:
    return count(dsn, "SELECT count(*) FROM pa_workers")


def doing(dsn: str) -> int:
    return count(dsn, "SELECT count(*) FROM pa_jobs WHERE status = 'doing'")


async def status(app: pa.App, job_id: int) -> pa.Status:
    job = await app.job_manager.get_job_async(job_id)
    assert job is not None
    return job.status


class TestRunningWorker:
    async def test_runs_the_jobs_deferred_in_the_block(self, pg_dsn):
        """The block gets an open app and a registered worker that runs its jobs."""
        app = pa.App(connector=pa.PsycopgConnector(pg_dsn))

        @app.task(name="add")
        async def add(a: int, b: int) -> int:
            return a + b

        async with running_worker(app, concurrency=2) as worker:
            assert workers(pg_dsn) == 1
            job_id = await add.defer_async(a=1, b=2)
            job = await app.job_manager.wait_for_job_async(job_id, timeout=10)
            assert (job.status, job.result) == (pa.Status.SUCCEEDED, 3)
            # The worker counts the outcome once its write returns, which may
            # come after the notification that woke the waiter.
            with anyio.fail_after(10):
                while worker.statistics().jobs_done["succeeded"] != 1:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
        assert not app.connector.is_open
        assert workers(pg_dsn) == 0

    async def test_leaving_lets_the_running_job_finish(self, pg_dsn):
        """Leaving the block stops the worker gracefully: a running job ends in time and succeeds."""
        app = pa.App(connector=pa.PsycopgConnector(pg_dsn))
        started, release = anyio.Event(), anyio.Event()

        @app.task(name="slow")
        async def slow() -> str:
            started.set()
            await release.wait()
            return "done"

        async def release_job() -> None:
            release.set()

        async with app.open_async(), anyio.create_task_group() as tg:
            async with running_worker(app) as worker:
                job_id = await slow.defer_async()
                await started.wait()
                # Runs only once the block is left and the worker asked to stop.
                tg.start_soon(release_job)
            assert worker.statistics().stopping
            assert app.connector.is_open  # opened by the caller, left open
            assert await status(app, job_id) is pa.Status.SUCCEEDED
        assert workers(pg_dsn) == 0

    async def test_jobs_over_the_graceful_timeout_are_aborted(self, pg_dsn):
        """A job still running after shutdown_graceful_timeout is cancelled: aborted, not doing."""
        app = pa.App(connector=pa.PsycopgConnector(pg_dsn))
        started = anyio.Event()

        @app.task(name="forever")
        async def forever() -> None:
            started.set()
            await anyio.sleep_forever()

        async with running_worker(app, shutdown_graceful_timeout=0.05):
            job_id = await forever.defer_async()
            await started.wait()
        async with app.open_async():
            assert await status(app, job_id) is pa.Status.ABORTED
        assert doing(pg_dsn) == 0
        assert workers(pg_dsn) == 0

    async def test_cancelling_the_block_stops_the_worker_gracefully(self, pg_dsn):
        """A cancelled block stops the worker like leaving it; the cancellation goes on."""
        app = pa.App(connector=pa.PsycopgConnector(pg_dsn))
        started = anyio.Event()

        @app.task(name="forever", retry=True)
        async def forever() -> None:
            started.set()
            await anyio.sleep_forever()

        with anyio.CancelScope() as scope:
            async with running_worker(app, shutdown_graceful_timeout=0.05):
                job_id = await forever.defer_async()
                await started.wait()
                scope.cancel()
                await anyio.sleep_forever()
        assert scope.cancelled_caught
        async with app.open_async():
            assert await status(app, job_id) is pa.Status.TODO  # its retry allows it
        assert workers(pg_dsn) == 0

    async def test_a_worker_that_cannot_register_raises_as_is(self, pg_dsn):
        """A registration refused by the database (schema missing) reaches the caller unwrapped."""
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute("DROP TABLE pa_workers CASCADE")
        app = pa.App(connector=pa.PsycopgConnector(pg_dsn))
        entered = False

        async def block() -> None:
            nonlocal entered
            async with running_worker(app):
                entered = True

        with pytest.raises(pa.ConnectorException):
            await block()
        assert not entered
        assert not app.connector.is_open

    async def test_an_error_of_the_block_goes_on_as_is(self, pg_dsn):
        """An exception raised in the block stops the worker and reaches the caller unwrapped."""
        app = pa.App(connector=pa.PsycopgConnector(pg_dsn))

        async def block() -> None:
            async with running_worker(app):
                raise LookupError("from the block")

        with pytest.raises(LookupError, match="from the block"):
            await block()
        assert workers(pg_dsn) == 0

    async def test_a_failing_worker_cancels_the_block_and_raises(self, pg_dsn):
        """A worker that dies cancels the block; WorkerFailed carries its error; nothing left doing."""
        connector = BreakableConnector(pg_dsn)
        app = pa.App(connector=connector)
        started = anyio.Event()

        @app.task(name="forever")
        async def forever() -> None:
            started.set()
            await anyio.sleep_forever()

        reached_the_end = False

        async def block() -> None:
            nonlocal reached_the_end
            async with running_worker(app, update_heartbeat_interval=0.01):
                await forever.defer_async()
                await started.wait()
                connector.broken = True
                await anyio.sleep_forever()
                reached_the_end = True

        with pytest.raises(WorkerFailed) as info:
            await block()
        assert not reached_the_end
        cause = info.value.__cause__
        assert isinstance(cause, BaseExceptionGroup)
        assert cause.subgroup(RuntimeError) is not None
        assert doing(pg_dsn) == 0
        assert workers(pg_dsn) == 0

    async def test_a_worker_that_cannot_start_raises_at_once(self, pg_dsn):
        """A database that refuses the worker fails the block's entry with ConnectorException."""
        app = pa.App(connector=pa.PsycopgConnector(pg_dsn + "_missing"))
        entered = False
        with pytest.raises(pa.ConnectorException):
            async with running_worker(app):
                entered = True
        assert not entered


async def run_lifespan(
    asgi: Starlette, during: Callable[[], Awaitable[None]]
) -> list[MutableMapping[str, Any]]:
    """Drive an application through the lifespan protocol as a server
    does: startup, ``during()`` while it serves, shutdown. Returns what the
    application sent."""
    Message = MutableMapping[str, Any]
    to_app, app_receive = anyio.create_memory_object_stream[Message](2)
    app_send, from_app = anyio.create_memory_object_stream[Message](2)
    sent: list[Message] = []
    scope: Message = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    async with (
        to_app,
        app_receive,
        app_send,
        from_app,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(asgi, scope, app_receive.receive, app_send.send)
        await to_app.send({"type": "lifespan.startup"})
        sent.append(await from_app.receive())
        if sent[-1]["type"] != "lifespan.startup.complete":
            return sent
        await during()
        await to_app.send({"type": "lifespan.shutdown"})
        sent.append(await from_app.receive())
    return sent


class TestLifespan:
    def make_web(self, app: pa.App, **options: Any) -> Starlette:
        @app.task(name="add")
        async def add(a: int, b: int) -> int:
            return a + b

        async def endpoint(request: Request) -> JSONResponse:
            job_id = await add.defer_async(a=2, b=3)
            job = await app.job_manager.wait_for_job_async(job_id, timeout=10)
            return JSONResponse({"result": job.result})

        return Starlette(
            routes=[Route("/add", endpoint)], lifespan=lifespan(app, **options)
        )

    async def test_serves_with_a_worker_and_stops_it_at_shutdown(self, pg_dsn):
        """Views defer through the opened app and the worker runs the jobs; shutdown unregisters it."""
        app = pa.App(connector=pa.PsycopgConnector(pg_dsn))
        web = self.make_web(app, concurrency=4)

        async def during() -> None:
            assert workers(pg_dsn) == 1
            transport = httpx.ASGITransport(app=web)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://test"
            ) as client:
                response = await client.get("/add")
            assert response.json() == {"result": 5}

        sent = await run_lifespan(web, during)
        assert [m["type"] for m in sent] == [
            "lifespan.startup.complete",
            "lifespan.shutdown.complete",
        ]
        assert not app.connector.is_open
        assert workers(pg_dsn) == 0

    async def test_a_worker_that_cannot_start_fails_the_startup(self, pg_dsn):
        """An unreachable database makes the startup fail: the server does not serve without a worker."""
        app = pa.App(connector=pa.PsycopgConnector(pg_dsn + "_missing"))
        web = self.make_web(app)

        async def during() -> None:
            pytest.fail("the application started")

        with pytest.RaisesGroup(pa.ConnectorException, flatten_subgroups=True):
            await run_lifespan(web, during)

    async def test_a_failing_worker_fails_the_lifespan(self, pg_dsn):
        """A worker dying while the app serves fails the lifespan loudly (SIGTERM off here)."""
        connector = BreakableConnector(pg_dsn)
        app = pa.App(connector=connector)
        web = self.make_web(
            app, stop_server_on_error=False, update_heartbeat_interval=0.01
        )

        async def during() -> None:
            connector.broken = True
            await anyio.sleep_forever()  # the lifespan's failure ends the test

        with pytest.RaisesGroup(WorkerFailed):
            await run_lifespan(web, during)
        assert workers(pg_dsn) == 0

    def test_options_are_checked_at_once(self):
        """A wrong worker option fails when the lifespan is made, not when the server starts."""
        app = pa.App(connector=pa.InMemoryConnector())
        with pytest.raises(TypeError):
            lifespan(app, concurrenci=2)
        with pytest.raises(ValueError, match="concurrency"):
            lifespan(app, concurrency=0)
