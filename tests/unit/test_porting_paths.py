"""Procrastinate's module paths and numbers: ``JobAborted`` from a sync task,
``InMemoryConnector.jobs``/``reset()``, ``RetryDecision(retry_in={...})``,
and a ``max_attempts`` that counts retries."""

from __future__ import annotations

import datetime
from typing import Any

import anyio
import pytest

from procrastinate_anyio import App, InMemoryConnector, JobContext, Status
from procrastinate_anyio.exceptions import JobAborted
from procrastinate_anyio.retry import RetryDecision, RetryStrategy
from procrastinate_anyio.testing import InMemoryConnector as PublicTestingConnector
from tests.support import HANG_GUARD_SECONDS

pytestmark = pytest.mark.anyio

NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
WORKER: dict[str, Any] = {"install_signal_handlers": False, "wait": False}


async def run(app: App) -> None:
    with anyio.fail_after(HANG_GUARD_SECONDS):
        await app.run_worker_async(**WORKER)


async def test_sync_task_raising_job_aborted_ends_aborted(
    app: App, connector: InMemoryConnector
) -> None:
    """A sync task that raises ``exceptions.JobAborted`` ends ``aborted``,
    not retried even with a retry strategy."""

    @app.task(name="quits", retry=3)
    def quits() -> None:
        raise JobAborted("giving up")

    await quits.defer_async()
    await run(app)

    assert [row["status"] for row in connector.jobs.values()] == ["aborted"]


async def test_testing_connector_jobs_and_reset(app: App) -> None:
    """``testing.InMemoryConnector`` lists jobs as Procrastinate's rows and
    forgets them on ``reset()``."""
    assert PublicTestingConnector is InMemoryConnector
    connector = app.connector
    assert isinstance(connector, InMemoryConnector)

    @app.task(name="greet", queue="mail")
    def greet(who: str) -> None:
        pass

    job_id = await greet.defer_async(who="you")

    row = connector.jobs[job_id]
    assert (row["task_name"], row["queue_name"], row["args"], row["status"]) == (
        "greet",
        "mail",
        {"who": "you"},
        "todo",
    )
    connector.reset()
    assert connector.jobs == {}


@pytest.mark.parametrize(
    "retry_in",
    [
        pytest.param({"seconds": 5}, id="mapping"),
        pytest.param(5, id="seconds"),
        pytest.param(datetime.timedelta(seconds=5), id="timedelta"),
    ],
)
def test_retry_in_forms(retry_in: Any) -> None:
    """``retry_in`` takes Procrastinate's ``{"seconds": 5}`` as well as
    seconds and a timedelta."""
    decision = RetryDecision(retry_in=retry_in)

    assert decision.scheduled_at(NOW) == NOW + datetime.timedelta(seconds=5)


def test_retry_in_bad_mapping() -> None:
    """A mapping that is not timedelta arguments is refused clearly."""
    with pytest.raises(TypeError, match="retry_in"):
        RetryDecision(retry_in={"fortnights": 1})


async def test_max_attempts_counts_retries(
    app: App, connector: InMemoryConnector
) -> None:
    """``RetryStrategy(max_attempts=2)`` runs a failing job 3 times, the
    task seeing ``attempts`` 0, 1, 2, and the job ends with 3 attempts."""
    seen: list[int] = []

    @app.task(name="flaky", retry=RetryStrategy(max_attempts=2), pass_context=True)
    def flaky(context: JobContext) -> None:
        seen.append(context.job.attempts)
        raise ValueError("again")

    job_id = await flaky.defer_async()
    await run(app)

    assert seen == [0, 1, 2]
    job = connector.store.job_get(job_id)
    assert job is not None
    assert (job.status, job.attempts) == (Status.FAILED, 3)


def test_linear_wait_first_delay() -> None:
    """The first retry of ``linear_wait`` comes at once (0 attempts before),
    then after 1x, 2x... as in Procrastinate."""
    strategy = RetryStrategy(linear_wait=10)

    delays = [strategy.delay_seconds(n) for n in range(3)]

    assert delays == [0, 10, 20]
