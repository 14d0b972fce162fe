"""The app's internal hooks (what ``contrib.opentelemetry`` builds on), on the
in-memory connector: defer hooks around a defer call, run hooks around a
job's run, worker services in each worker, and what their errors do."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import anyio
import attrs
import pytest

import procrastinate_anyio as pa
from procrastinate_anyio import Status
from tests.support import HANG_GUARD_SECONDS

from .conftest import stored_jobs

if TYPE_CHECKING:
    from collections.abc import Iterator

    from procrastinate_anyio._hooks import DeferCall, JobRun

pytestmark = pytest.mark.anyio


@pytest.fixture
def app(connector: pa.InMemoryConnector) -> pa.App:
    return pa.App(
        connector=connector,
        worker_defaults={"install_signal_handlers": False, "wait": False},
    )


async def run(app: pa.App, **options: Any) -> None:
    with anyio.fail_after(HANG_GUARD_SECONDS):
        await app.run_worker_async(**options)


def add_header(events: list[Any]) -> Any:
    @contextlib.contextmanager
    def hook(call: DeferCall) -> Iterator[None]:
        events.append(("before", len(call.jobs)))
        call.jobs = [attrs.evolve(j, headers={"h": j.task_name}) for j in call.jobs]
        try:
            yield
        except Exception as exc:
            events.append(("error", type(exc).__name__))
            raise
        events.append(("after", call.job_ids))

    return hook


async def test_defer_hook_adds_headers(
    app: pa.App, connector: pa.InMemoryConnector
) -> None:
    """A defer hook wraps each defer call, async and sync: it may change the
    jobs before they are written, and sees their ids after."""
    events: list[Any] = []
    app._hooks.defer.append(add_header(events))

    @app.task(name="t")
    def t(n: int = 0) -> None:
        pass

    first = await t.defer_async()
    more = await t.batch_defer_async({"n": 1}, {"n": 2})
    async with app.open_async():
        last = await anyio.to_thread.run_sync(t.defer)

    assert events == [
        ("before", 1),
        ("after", [first]),
        ("before", 2),
        ("after", more),
        ("before", 1),
        ("after", [last]),
    ]
    assert [dict(job.headers) for job in stored_jobs(connector)] == [{"h": "t"}] * 4


async def test_defer_hook_sees_errors(
    app: pa.App, connector: pa.InMemoryConnector
) -> None:
    """The write's exception goes through the hook, to the caller."""
    events: list[Any] = []
    app._hooks.defer.append(add_header(events))

    @app.task(queueing_lock="one")
    async def t() -> None:
        pass

    await t.defer_async()
    with pytest.raises(pa.AlreadyEnqueued):
        await t.defer_async()

    assert events[-1] == ("error", "AlreadyEnqueued")
    assert len(stored_jobs(connector)) == 1


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        pytest.param({"k": 1}, TypeError, id="not-text"),
        pytest.param(["k"], TypeError, id="not-a-mapping"),
        pytest.param({"k": "\x00"}, ValueError, id="nul"),
    ],
)
async def test_bad_headers_write_nothing(
    app: pa.App, connector: pa.InMemoryConnector, headers: Any, error: type
) -> None:
    """Headers that are not text to text raise a clear error, and no job is
    written."""

    @contextlib.contextmanager
    def hook(call: DeferCall) -> Iterator[None]:
        call.jobs = [attrs.evolve(j, headers=headers) for j in call.jobs]
        yield

    app._hooks.defer.append(hook)

    @app.task
    async def t() -> None:
        pass

    with pytest.raises(error, match="headers"):
        await t.defer_async()
    assert stored_jobs(connector) == []


async def test_run_hook_sees_the_outcome(app: pa.App) -> None:
    """A run hook wraps each job's run and sees how it ended."""
    seen: list[Any] = []

    @contextlib.contextmanager
    def hook(run: JobRun) -> Iterator[None]:
        seen.append(("start", run.job.task_name, run.outcome))
        yield
        assert run.outcome is not None
        seen.append(("end", run.job.task_name, run.outcome.status))

    app._hooks.run.append(hook)

    @app.task(name="ok")
    async def ok() -> None:
        pass

    @app.task(name="bad")
    def bad() -> None:
        raise ValueError

    await ok.defer_async()
    await bad.defer_async()
    await run(app, concurrency=1)

    assert seen == [
        ("start", "ok", None),
        ("end", "ok", Status.SUCCEEDED),
        ("start", "bad", None),
        ("end", "bad", Status.FAILED),
    ]


async def test_run_hook_error_fails_the_job(
    app: pa.App, connector: pa.InMemoryConnector
) -> None:
    """A run hook that raises fails that job; the worker goes on."""
    ran = []

    @contextlib.contextmanager
    def hook(run: JobRun) -> Iterator[None]:
        if run.job.task_kwargs["n"] == 1:
            raise RuntimeError("hook broke")
        yield

    app._hooks.run.append(hook)

    @app.task
    async def t(n: int) -> None:
        ran.append(n)

    await t.batch_defer_async({"n": 1}, {"n": 2})
    await run(app, concurrency=1)

    jobs = stored_jobs(connector)
    assert [job.status for job in jobs] == [Status.FAILED, Status.SUCCEEDED]
    assert jobs[0].error is not None
    assert jobs[0].error.message == "hook broke"
    assert ran == [2]


async def test_worker_service_runs_with_each_worker(app: pa.App) -> None:
    """A worker service runs in each worker of the app, and is cancelled
    when the worker stops."""
    events: list[tuple[str, bool | None]] = []

    async def service(worker_app: Any) -> None:
        events.append(("start", worker_app is app))
        try:
            await anyio.sleep_forever()
        finally:
            events.append(("end", None))

    app._hooks.worker_services.append(service)
    await run(app)
    await run(app)

    assert events == [("start", True), ("end", None)] * 2


async def test_with_connector_keeps_the_hooks(app: pa.App) -> None:
    """A copy of the app on another connector has the same hooks, in lists
    of its own."""
    hook: Any = object()
    app._hooks.run.append(hook)

    copy = app.with_connector(pa.InMemoryConnector())

    assert copy._hooks.run == [hook]
    copy._hooks.run.clear()
    assert app._hooks.run == [hook]
