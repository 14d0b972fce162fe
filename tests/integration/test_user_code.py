"""User code never stops a worker: whatever it raises outside the task body
fails that one job, recorded, and the worker runs its other jobs.

Each test runs on the in-memory connector and on PostgreSQL, on asyncio and
trio. A worker that stopped would raise out of ``run_worker`` (and cancel the
other jobs); a one-shot worker that returns, with every other job succeeded,
proves it went on.
"""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import procrastinate_anyio as pa
from procrastinate_anyio import BaseRetryStrategy, RetryDecision, Status
from procrastinate_anyio.worker._periodic_deferrer import PeriodicDeferrer
from tests.support import PG_HANG_GUARD_SECONDS

if TYPE_CHECKING:
    from procrastinate_anyio.connectors import AsyncConnector

pytestmark = pytest.mark.anyio

OTHER_JOBS = 20


@pytest.fixture(params=["memory", "postgres"])
def connector(request: pytest.FixtureRequest) -> AsyncConnector:
    if request.param == "memory":
        return pa.InMemoryConnector()
    # Not an async fixture: requesting one from a running test would re-enter
    # the event loop.
    pg: AsyncConnector = request.getfixturevalue("pg_connector")
    return pg


@pytest.fixture
def app(connector: AsyncConnector) -> pa.App:
    defaults = {"install_signal_handlers": False, "shutdown_graceful_timeout": 2}
    return pa.App(connector=connector, worker_defaults=defaults)


async def run_with_others(app: pa.App, bad_job_id: int) -> pa.Job:
    """Run a one-shot worker over the bad job and other good ones; check the
    good ones all succeeded; the bad job as it ended."""

    @app.task(name="good")
    async def good(i: int) -> int:
        return i

    good_ids = await good.batch_defer_async(*({"i": i} for i in range(OTHER_JOBS)))
    with anyio.fail_after(PG_HANG_GUARD_SECONDS):
        await app.run_worker(wait=False, concurrency=4)
    jobs = {j.id: j for j in await app.job_manager.list_jobs_async()}
    assert [jobs[i].status for i in good_ids] == [Status.SUCCEEDED] * OTHER_JOBS
    return jobs[bad_job_id]


class RaisingStrategy(BaseRetryStrategy):
    def get_retry_decision(
        self, *, exception: BaseException, job: pa.Job
    ) -> RetryDecision | None:
        raise RuntimeError("strategy bug")


class BadDelayStrategy(BaseRetryStrategy):
    """Returns a decision that only fails when the delay is computed."""

    def get_retry_decision(
        self, *, exception: BaseException, job: pa.Job
    ) -> RetryDecision | None:
        return RetryDecision(retry_in="soon")  # type: ignore[arg-type]  # the bug under test


@pytest.mark.parametrize(
    "strategy",
    [
        pytest.param(RaisingStrategy(), id="strategy-raises"),
        pytest.param(BadDelayStrategy(), id="decision-unusable"),
    ],
)
async def test_retry_strategy_that_raises_fails_the_job(
    app: pa.App, strategy: BaseRetryStrategy, caplog: pytest.LogCaptureFixture
) -> None:
    """A retry strategy that raises fails its job with both errors recorded."""

    @app.task(retry=strategy)
    async def broken() -> None:
        raise ValueError("task error")

    job = await run_with_others(app, await broken.defer_async())

    assert job.status is Status.FAILED
    assert job.error is not None
    assert job.error.type == "ValueError"
    assert "task error" in job.error.message
    assert "the retry strategy raised" in job.error.message
    assert "retry_strategy_error" in {
        getattr(r, "action", None) for r in caplog.records
    }


@pytest.mark.parametrize(
    "result",
    [
        pytest.param(lambda: object(), id="object"),
        pytest.param(lambda: {"x": float("nan")}, id="nan"),
        pytest.param(lambda: "nul \x00", id="nul"),
        pytest.param(
            lambda: datetime.datetime.now(datetime.timezone.utc), id="datetime"
        ),
        pytest.param(lambda: _deep(100_000), id="too-deep"),
    ],
)
async def test_result_that_is_not_json_fails_the_job(app: pa.App, result: Any) -> None:
    """A return value that cannot be stored fails its job, with a clear error."""

    @app.task
    async def returns() -> Any:
        return result()

    job = await run_with_others(app, await returns.defer_async())

    assert job.status is Status.FAILED
    assert job.error is not None
    assert "is not JSON-serialisable" in job.error.message


def _deep(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


async def test_task_lookup_hook_that_raises_fails_the_job(
    connector: AsyncConnector, caplog: pytest.LogCaptureFixture
) -> None:
    """Code run while the job is prepared (here an app whose task lookup is
    customised and raises) fails that job only."""

    class LazyApp(pa.App):
        broken = False

        def get_task(self, name: str) -> pa.Task[Any, Any]:
            if name == "lazy" and self.broken:
                raise ImportError("cannot load the task's module")
            return super().get_task(name)

    app = LazyApp(
        connector=connector,
        worker_defaults={"install_signal_handlers": False},
    )
    app.task(name="lazy")(lambda: None)
    bad_id = await app.configure_task("lazy").defer_async()
    app.broken = True

    job = await run_with_others(app, bad_id)

    assert job.status is Status.FAILED
    assert job.error is not None
    assert (job.error.type, job.error.message) == (
        "ImportError",
        "cannot load the task's module",
    )
    assert "job_unexpected_error" in {
        getattr(r, "action", None) for r in caplog.records
    }


async def test_periodic_task_that_cannot_be_prepared_is_skipped(
    app: pa.App, connector: AsyncConnector, caplog: pytest.LogCaptureFixture
) -> None:
    """A periodic task whose job cannot be prepared (user code raising in its
    configure step) skips its tick and logs; the other periodic tasks are
    deferred."""

    @app.periodic(cron="* * * * *", periodic_id="broken")
    @app.task(name="broken")
    async def broken(timestamp: int) -> None: ...

    @app.periodic(cron="* * * * *")
    @app.task(name="fine")
    async def fine(timestamp: int) -> None: ...

    def configure(**_: Any) -> Any:
        raise RuntimeError("configure bug")

    broken.job_template = configure  # type: ignore[method-assign]  # the bug under test
    deferrer = PeriodicDeferrer(connector, app.periodic_tasks, max_delay=120)
    now = datetime.datetime.now(datetime.timezone.utc).timestamp()

    with caplog.at_level(logging.ERROR), anyio.fail_after(PG_HANG_GUARD_SECONDS):
        result = await deferrer.run_once(now)
        again = await deferrer.run_once(now)

    assert {name for name, _, _ in result.deferred} == {"fine"}
    assert again.deferred == []  # the broken tick is not retried in a loop
    assert "periodic_task_error" in {getattr(r, "action", None) for r in caplog.records}
