"""The rescuer on the in-memory connector: where a stalled job goes
(``rescue_outcome``), one pass (``Rescuer.run_once``), and the worker
service that brings a dead worker's job back with no user code."""

from __future__ import annotations

import datetime
import functools
import logging
from typing import Any

import anyio
import attrs
import pytest

from procrastinate_anyio import (
    App,
    BaseRetryStrategy,
    ConnectorException,
    InMemoryConnector,
    Job,
    RetryDecision,
    Status,
)
from procrastinate_anyio.connectors import FetchParams
from procrastinate_anyio.worker._rescuer import Rescuer, rescue_outcome
from tests.support import mock_clock

from ..conftest import NOW

SILENCE = datetime.timedelta(seconds=60)


def stalled(task_name: str, attempts: int = 1, lock: str | None = None) -> Job:
    return Job(
        started_at=NOW,
        id=7,
        queue="default",
        task_name=task_name,
        status=Status.DOING,
        attempts=attempts,
        lock=lock,
        worker_id=3,
    )


class Raising(BaseRetryStrategy):
    """A retry strategy the rescuer must not ask."""

    def get_retry_decision(
        self, *, exception: BaseException, job: Job
    ) -> RetryDecision | None:
        raise AssertionError("a crash asked the retry strategy")


class TestRecoveryOutcome:
    @pytest.mark.parametrize(
        ("recoveries", "bound", "status"),
        [
            pytest.param(0, 3, Status.TODO, id="first-crash"),
            pytest.param(2, 3, Status.TODO, id="last-allowed"),
            pytest.param(3, 3, Status.FAILED, id="one-too-many"),
            pytest.param(0, 0, Status.FAILED, id="no-recovery-allowed"),
        ],
    )
    def test_crashes_are_counted_apart(
        self, recoveries: int, bound: int, status: Status
    ) -> None:
        """A stalled job goes back to todo at once until its recoveries pass
        the bound; then it fails, with an error that says why."""
        job = attrs.evolve(stalled("work", lock="L"), recoveries=recoveries)

        outcome = rescue_outcome(job, bound)

        assert (outcome.job_id, outcome.status, outcome.lock) == (7, status, "L")
        assert (outcome.retry_at, outcome.recovered) == (None, True)
        assert (outcome.worker_id, outcome.started_at) == (3, job.started_at)
        assert outcome.error is not None
        assert outcome.error.type == "procrastinate_anyio._exceptions.StalledJob"
        assert "Worker 3 stopped heartbeating" in outcome.error.message
        if status is Status.FAILED:
            assert f"more than max_crash_recoveries ({bound})" in outcome.error.message

    def test_negative_bound_is_refused(self) -> None:
        """max_crash_recoveries below 0 is refused at construction."""
        with pytest.raises(ValueError, match="max_crash_recoveries"):
            Rescuer(
                InMemoryConnector(),
                stalled_worker_timeout=1,
                interval=1,
                max_crash_recoveries=-1,
            )


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
        maintenance = Rescuer(app.connector, stalled_worker_timeout=30, interval=1)

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
            app.connector, stalled_worker_timeout=30, interval=1
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
            app.connector, stalled_worker_timeout=90, interval=1
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
                app.connector, stalled_worker_timeout=30, interval=1
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
