"""The rescuer on the in-memory connector: where a stalled job goes
(``rescue_outcome``), one pass (``Rescuer.run_once``), and the worker
service that brings a dead worker's job back with no user code."""

from __future__ import annotations

import datetime
import functools
import logging
from typing import Any

import anyio
import pytest

from procrastinate_anyio import (
    App,
    BaseRetryStrategy,
    ConnectorException,
    InMemoryConnector,
    Job,
    RetryDecision,
    RetryStrategy,
    Status,
)
from procrastinate_anyio._exceptions import StalledJob
from procrastinate_anyio.connectors import FetchParams
from procrastinate_anyio.worker._rescuer import Rescuer, rescue_outcome
from tests.support import mock_clock

from ..conftest import NOW

SILENCE = datetime.timedelta(seconds=60)


def stalled(task_name: str, attempts: int = 1, lock: str | None = None) -> Job:
    return Job(
        id=7,
        queue="default",
        task_name=task_name,
        status=Status.DOING,
        attempts=attempts,
        lock=lock,
        worker_id=3,
    )


class Recorder(BaseRetryStrategy):
    """Retries elsewhere, in a minute; remembers what it was shown."""

    def __init__(self) -> None:
        self.seen: list[tuple[BaseException, Job]] = []

    def get_retry_decision(
        self, *, exception: BaseException, job: Job
    ) -> RetryDecision | None:
        self.seen.append((exception, job))
        return RetryDecision(retry_in=60, priority=5, queue="rescue", lock="R")


class TestRecoveryOutcome:
    @pytest.mark.parametrize(
        ("retry", "attempts", "status"),
        [
            pytest.param(False, 1, Status.FAILED, id="no-retry"),
            pytest.param(2, 1, Status.TODO, id="attempt-left"),
            pytest.param(2, 2, Status.FAILED, id="no-attempt-left"),
            pytest.param(True, 50, Status.TODO, id="forever"),
            pytest.param(
                RetryStrategy(retry_exceptions=[KeyError]),
                1,
                Status.FAILED,
                id="other-exceptions",
            ),
            pytest.param(
                RetryStrategy(retry_exceptions=[StalledJob]),
                1,
                Status.TODO,
                id="stalled-job-retried",
            ),
        ],
    )
    def test_follows_the_retry_strategy(
        self, app: App, retry: Any, attempts: int, status: Status
    ) -> None:
        """A stalled job goes back to todo while its strategy allows, else fails."""
        app.task(name="work", retry=retry)(lambda: None)

        outcome = rescue_outcome(stalled("work", attempts, lock="L"), app, NOW)

        assert (outcome.job_id, outcome.status, outcome.lock) == (7, status, "L")
        assert outcome.error is not None
        assert outcome.error.type == "procrastinate_anyio._exceptions.StalledJob"
        assert "Worker 3 stopped heartbeating" in outcome.error.message

    def test_unknown_task_goes_back_to_todo(self, app: App) -> None:
        """A job of a task this app does not know goes back to todo."""
        outcome = rescue_outcome(stalled("elsewhere"), app, NOW)

        assert outcome.status is Status.TODO

    def test_custom_strategy_decides(self, app: App) -> None:
        """A custom strategy sees StalledJob; its priority, queue, lock and
        delay apply."""
        strategy = Recorder()
        app.task(name="work", retry=strategy)(lambda: None)
        before = NOW

        outcome = rescue_outcome(stalled("work"), app, NOW)

        ((exception, job),) = strategy.seen
        assert isinstance(exception, StalledJob)
        assert job.id == 7
        assert (outcome.status, outcome.retry_priority, outcome.retry_queue) == (
            Status.TODO,
            5,
            "rescue",
        )
        assert outcome.retry_lock == "R"
        assert outcome.retry_at is not None
        assert outcome.retry_at - before >= datetime.timedelta(seconds=60)


@pytest.mark.anyio
class TestRunOnce:
    @pytest.fixture
    def connector(self) -> InMemoryConnector:
        return InMemoryConnector(clock=lambda: NOW)

    async def dead_worker_job(self, app: App, connector: InMemoryConnector) -> int:
        """A job left doing by a worker that stopped heartbeating."""
        app.task(name="work", retry=1)(lambda: None)
        job_id = await app.configure_task("work").defer_async()
        worker_id = await connector.worker_register("dead", None)
        await connector.job_fetch_many(
            FetchParams(worker_id=worker_id, queues=None, limit=1)
        )
        connector.store.workers[worker_id].last_heartbeat -= SILENCE
        return job_id

    async def test_recovers_and_logs(
        self, app: App, connector: InMemoryConnector, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A pass brings back the dead worker's job, prunes it, and says so."""
        job_id = await self.dead_worker_job(app, connector)
        maintenance = Rescuer(app.connector, app, stalled_worker_timeout=30, interval=1)

        result = await maintenance.run_once()

        assert result is not None
        assert ([o.job_id for o in result.recovered], result.pruned_workers) == (
            [job_id],
            1,
        )
        assert connector.store.job_get(job_id).status is Status.TODO  # type: ignore[union-attr]  # it exists
        (record,) = caplog.records
        assert (record.levelno, record.__dict__["action"], record.__dict__["jobs"]) == (
            logging.WARNING,
            "stalled_jobs_recovered",
            [job_id],
        )

    async def test_prune_only(
        self, app: App, connector: InMemoryConnector, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A pass that only prunes idle dead workers logs that at info level."""
        caplog.set_level(logging.INFO)
        worker_id = await connector.worker_register("idle", None)
        connector.store.workers[worker_id].last_heartbeat -= SILENCE

        result = await Rescuer(
            app.connector, app, stalled_worker_timeout=30, interval=1
        ).run_once()

        assert result is not None
        assert result.pruned_workers == 1
        assert [r.__dict__["action"] for r in caplog.records] == ["workers_pruned"]

    async def test_live_workers_are_left_alone(
        self, app: App, connector: InMemoryConnector
    ) -> None:
        """Within ``stalled_worker_timeout``, a silent worker keeps its job."""
        job_id = await self.dead_worker_job(app, connector)

        result = await Rescuer(
            app.connector, app, stalled_worker_timeout=90, interval=1
        ).run_once()

        assert result is not None
        assert result.recovered == ()
        assert connector.store.job_get(job_id).status is Status.DOING  # type: ignore[union-attr]  # it exists

    async def test_database_error(
        self, app: App, connector: InMemoryConnector, monkeypatch, caplog
    ) -> None:
        """A pass that cannot reach the database returns None and logs a warning."""

        async def broken(params: Any) -> Any:
            raise ConnectorException("database down")

        monkeypatch.setattr(connector, "maintenance_run", broken)

        assert (
            await Rescuer(
                app.connector, app, stalled_worker_timeout=30, interval=1
            ).run_once()
            is None
        )
        assert [r.__dict__["action"] for r in caplog.records] == ["maintenance_error"]


@pytest.mark.anyio
@mock_clock()
async def test_worker_recovers_a_dead_workers_job(connector: InMemoryConnector) -> None:
    """A worker brings back the job of a dead worker by itself and runs it again."""
    app = App(connector=connector, worker_defaults={"install_signal_handlers": False})
    ran = anyio.Event()
    attempts: list[int] = []

    @app.task(name="work", retry=1, pass_context=True)
    async def work(context: Any) -> None:
        attempts.append(context.job.attempts)
        ran.set()

    job_id = await work.defer_async()
    dead = await connector.worker_register("dead", None)
    await connector.job_fetch_many(FetchParams(worker_id=dead, queues=None, limit=1))
    connector.store.workers[dead].last_heartbeat -= SILENCE

    with anyio.fail_after(100):
        async with anyio.create_task_group() as tg:
            worker = await tg.start(
                functools.partial(
                    app.run_worker,
                    stalled_worker_timeout=30,
                    fetch_job_polling_interval=5,
                )
            )
            await ran.wait()
            worker.stop()

    assert attempts == [1]  # the dead worker's attempt ended with the rescue
    assert connector.store.job_get(job_id).status is Status.SUCCEEDED  # type: ignore[union-attr]  # it exists
    assert dead not in connector.store.workers
