"""Tests of task and worker middleware (Procrastinate 3.9's model) on the
in-memory connector: order, kinds, what they see, and errors."""

from __future__ import annotations

import functools
import threading
from typing import Any

import anyio
import pytest

import procrastinate_anyio as pa
from procrastinate_anyio import JobContext
from procrastinate_anyio.exceptions import MiddlewareKindMismatch
from procrastinate_anyio.middleware import is_async_middleware
from tests.support import HANG_GUARD_SECONDS

pytestmark = pytest.mark.anyio


@pytest.fixture
def app(connector: pa.InMemoryConnector) -> pa.App:
    return pa.App(
        connector=connector,
        worker_defaults={"install_signal_handlers": False, "wait": False},
    )


def recorder(events: list[str], label: str, *, is_async: bool) -> Any:
    """A middleware that records before/after around the next one."""
    if is_async:

        async def async_mw(call_next: Any, context: JobContext, worker: Any) -> Any:
            events.append(f"{label}>")
            try:
                return await call_next()
            finally:
                events.append(f"<{label}")

        return async_mw

    def sync_mw(call_next: Any, context: JobContext, worker: Any) -> Any:
        events.append(f"{label}>")
        try:
            return call_next()
        finally:
            events.append(f"<{label}")

    return sync_mw


async def run(app: pa.App, **options: Any) -> None:
    with anyio.fail_after(HANG_GUARD_SECONDS):
        await app.run_worker_async(**options)


@pytest.mark.parametrize("is_async", [True, False], ids=["async", "sync"])
async def test_order(
    app: pa.App, connector: pa.InMemoryConnector, is_async: bool
) -> None:
    """Outermost first: worker middleware, the worker's task middleware of the
    task's kind, the task's own; the result goes through them all."""
    events: list[str] = []

    def body() -> str:
        events.append("task")
        return "done"

    own = recorder(events, "own", is_async=is_async)
    if is_async:

        @app.task(name="t", task_middleware=[own])
        async def t() -> str:
            return body()

    else:

        @app.task(name="t", task_middleware=[own])
        def t() -> str:
            return body()

    await t.defer_async()
    await run(
        app,
        worker_middleware=[recorder(events, "worker", is_async=True)],
        task_middleware=[
            recorder(events, "sync", is_async=False),
            recorder(events, "async", is_async=True),
        ],
    )

    kind = "async" if is_async else "sync"
    assert events == [
        "worker>",
        f"{kind}>",
        "own>",
        "task",
        "<own",
        f"<{kind}",
        "<worker",
    ]
    assert [row["status"] for row in connector.jobs.values()] == ["succeeded"]


async def test_sync_task_middleware_runs_in_the_task_thread(app: pa.App) -> None:
    """A sync task's middleware runs in the thread of the task."""
    threads: list[int] = []

    def mw(call_next: Any, context: JobContext, worker: Any) -> Any:
        threads.append(threading.get_ident())
        return call_next()

    @app.task(name="t", task_middleware=[mw])
    def t() -> None:
        threads.append(threading.get_ident())

    await t.defer_async()
    await run(app)

    assert len(threads) == 2
    assert threads[0] == threads[1] != threading.get_ident()


async def test_context_seen_by_middleware(app: pa.App) -> None:
    """Middleware get the job's context (with ``task`` and ``queues_display``)
    and the worker, even for a task without ``pass_context``."""
    seen: list[Any] = []

    async def mw(call_next: Any, context: JobContext, worker: Any) -> Any:
        seen.extend(
            [context.task.name, context.queues_display, context.abort_reason(), worker]
        )
        return await call_next()

    @app.task(name="t", queue="mail")
    async def t() -> None:
        pass

    await t.defer_async()
    await run(app, worker_middleware=[mw], queues=["mail", "sms"])

    assert seen[:3] == ["t", "queues mail, sms", None]
    assert isinstance(seen[3], pa.Worker)


async def test_errors_go_through(app: pa.App, connector: pa.InMemoryConnector) -> None:
    """A task's exception reaches the worker through the middleware, so
    retries still apply."""

    async def mw(call_next: Any, context: JobContext, worker: Any) -> Any:
        return await call_next()

    @app.task(name="t", retry=pa.RetryStrategy(max_attempts=1, wait=3600))
    def t() -> None:
        raise ValueError("no")

    await t.defer_async()
    await run(app, worker_middleware=[mw])

    assert [row["status"] for row in connector.jobs.values()] == ["todo"]


def test_kind_mismatch_at_declaration(app: pa.App) -> None:
    """A task middleware of the other kind is refused when the task is
    declared; a sync worker middleware or a non-callable when the worker
    options are made."""

    async def async_mw(call_next: Any, context: Any, worker: Any) -> Any:
        return await call_next()

    def sync_mw(call_next: Any, context: Any, worker: Any) -> Any:
        return call_next()

    with pytest.raises(MiddlewareKindMismatch, match="sync"):
        app.task(name="s", task_middleware=[async_mw])(lambda: None)
    with pytest.raises(MiddlewareKindMismatch, match="async"):

        @app.task(name="a", task_middleware=[sync_mw])
        async def a() -> None:
            pass

    with pytest.raises(MiddlewareKindMismatch):
        pa.WorkerOptions(worker_middleware=[sync_mw])
    with pytest.raises(TypeError, match="callables"):
        pa.WorkerOptions(task_middleware=[42])
    assert "s" not in app.tasks


def test_is_async_middleware() -> None:
    """Partials and objects with an async ``__call__`` count as async."""

    async def mw(call_next: Any, context: Any, worker: Any) -> Any:
        return await call_next()

    class Callable:
        async def __call__(self, call_next: Any, context: Any, worker: Any) -> Any:
            return await call_next()

    assert is_async_middleware(functools.partial(mw))
    assert is_async_middleware(Callable())
    assert not is_async_middleware(lambda call_next, context, worker: None)


async def test_abort_reason_in_a_task(
    app: pa.App, connector: pa.InMemoryConnector
) -> None:
    """``context.abort_reason()`` says why a job must stop."""
    reasons: list[Any] = []

    @app.task(name="t", pass_context=True, timeout=0.01)
    def t(context: JobContext) -> None:
        while not context.should_abort():
            threading.Event().wait(0.001)
        reasons.append(context.abort_reason())

    await t.defer_async()
    await run(app)

    assert reasons == ["timeout"]  # a StopReason, a str enum


async def test_sync_middleware_stops_the_worker(
    app: pa.App, connector: pa.InMemoryConnector
) -> None:
    """A sync middleware may call ``worker.stop()`` from the task's thread
    (Procrastinate's ``stop_after_one``): the job ends, nothing else starts."""

    def stop_after_one(call_next: Any, context: JobContext, worker: Any) -> Any:
        worker.stop()
        return call_next()

    @app.task(name="t", task_middleware=[stop_after_one])
    def t() -> None:
        pass

    await t.batch_defer_async({}, {})
    await run(app, wait=True)

    assert [row["status"] for row in connector.jobs.values()] == ["succeeded", "todo"]
