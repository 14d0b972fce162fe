"""Periodic tasks on the in-memory connector: cron validation and tick
arithmetic (pure, ``now`` passed in), ``@app.periodic`` at declaration, and
``PeriodicDeferrer`` passes (``run_once(now)``; ``run()`` under Trio's
MockClock)."""

from __future__ import annotations

import datetime
import logging
from typing import Any

import anyio
import pytest

from procrastinate_anyio import (
    App,
    ConnectorException,
    InMemoryConnector,
    InvalidJobArguments,
    Status,
    TaskAlreadyRegistered,
)
from procrastinate_anyio._periodic import check_cron, next_tick, ticks_between
from procrastinate_anyio.worker._periodic_deferrer import PeriodicDeferrer
from tests.support import HANG_GUARD_SECONDS, mock_clock

from .conftest import stored_jobs


class LoopClock:
    """The time of day as the event loop's clock moves (Trio's MockClock)."""

    def __init__(self, start: float) -> None:
        self._start = start

    def now(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(
            self._start + anyio.current_time(), datetime.timezone.utc
        )


T0 = 1_900_000_020.0  # 2030-03-17 17:47:00 UTC: on a minute
MINUTE = 60


def ticks(connector: InMemoryConnector) -> list[tuple[str, Any]]:
    return [
        (job.task_name, job.task_kwargs["timestamp"]) for job in stored_jobs(connector)
    ]


class TestCron:
    @pytest.mark.parametrize(
        "cron",
        [
            pytest.param("* * * * *", id="5-fields"),
            pytest.param("*/5 1-3 * * mon-fri", id="ranges"),
            pytest.param("* * * * * */10", id="6-fields"),
            pytest.param("0 4 1 1 *", id="yearly"),
        ],
    )
    def test_valid(self, cron: str) -> None:
        """A valid cron expression is returned as is."""
        assert check_cron(cron) == cron

    @pytest.mark.parametrize(
        "cron",
        [
            pytest.param("", id="empty"),
            pytest.param("* * * *", id="4-fields"),
            pytest.param("* * * * * * *", id="7-fields"),
            pytest.param("61 * * * *", id="out-of-range"),
            pytest.param("every minute", id="words"),
            pytest.param("@daily", id="alias"),
        ],
    )
    def test_invalid(self, cron: str) -> None:
        """An invalid cron expression raises ValueError, naming the format."""
        with pytest.raises(ValueError, match="5 fields"):
            check_cron(cron)

    def test_not_a_string(self) -> None:
        """A cron that is not a string raises TypeError."""
        with pytest.raises(TypeError):
            check_cron(5)  # type: ignore[arg-type]  # the error under test

    @pytest.mark.parametrize(
        ("cron", "after", "until", "expected"),
        [
            pytest.param("* * * * *", T0, T0 + 150, [T0 + 60, T0 + 120], id="minutes"),
            pytest.param("* * * * *", T0 - 60, T0, [T0], id="until-included"),
            pytest.param("* * * * *", T0, T0 + 59, [], id="after-excluded"),
            pytest.param(
                "* * * * * */20", T0, T0 + 60, [T0 + 20, T0 + 40, T0 + 60], id="seconds"
            ),
        ],
    )
    def test_ticks_between(
        self, cron: str, after: float, until: float, expected: list[float]
    ) -> None:
        """The ticks in ``(after, until]``, oldest first, as integers."""
        assert ticks_between(cron, after, until) == expected

    def test_next_tick(self) -> None:
        """The next tick is strictly after ``now``."""
        assert next_tick("* * * * *", T0) == T0 + 60
        assert next_tick("* * * * *", T0 + 0.5) == T0 + 60


class TestDeclaration:
    def test_registers(self, app: App) -> None:
        """``@app.periodic`` above ``@app.task`` registers a schedule with its options."""

        @app.periodic(cron="*/5 * * * *", periodic_id="often", queue="cron")
        @app.task
        async def cleanup(timestamp: int) -> None: ...

        (periodic,) = app.periodic_tasks
        assert (periodic.task, periodic.cron, periodic.periodic_id) == (
            cleanup,
            "*/5 * * * *",
            "often",
        )
        assert periodic.configure_kwargs == {"queue": "cron"}

    def test_invalid_cron(self, app: App) -> None:
        """An invalid cron fails at declaration, and nothing is scheduled."""
        with pytest.raises(ValueError, match="Invalid cron"):

            @app.periodic(cron="* * *")
            @app.task
            async def cleanup(timestamp: int) -> None: ...

        assert app.periodic_tasks == []

    @pytest.mark.parametrize(
        "options",
        [
            pytest.param({}, id="no-timestamp"),
            pytest.param({"task_kwargs": {"other": 1}}, id="unknown-kwarg"),
        ],
    )
    def test_task_without_timestamp(self, app: App, options: dict[str, Any]) -> None:
        """A task that cannot take ``timestamp`` fails at declaration."""

        @app.task
        async def plain() -> None: ...

        with pytest.raises(InvalidJobArguments):
            app.periodic(cron="* * * * *", **options)(plain)

    def test_task_kwargs_complete_the_call(self, app: App) -> None:
        """``task_kwargs`` give the other arguments; a missing one fails at once."""

        @app.task
        async def report(timestamp: int, kind: str) -> None: ...

        app.periodic(cron="* * * * *", task_kwargs={"kind": "daily"})(report)
        with pytest.raises(InvalidJobArguments):
            app.periodic(cron="* * * * *", periodic_id="bare")(report)

    def test_bad_option(self, app: App) -> None:
        """A bad ``configure`` option fails at declaration."""

        @app.task
        async def cleanup(timestamp: int) -> None: ...

        with pytest.raises(TypeError):
            app.periodic(cron="* * * * *", priority="high")(cleanup)

    def test_not_above_a_task(self, app: App) -> None:
        """``@app.periodic`` on a plain function raises TypeError."""

        async def cleanup(timestamp: int) -> None: ...

        with pytest.raises(TypeError, match=r"above @app\.task"):
            app.periodic(cron="* * * * *")(cleanup)  # type: ignore[arg-type]  # the error under test

    def test_two_schedules(self, app: App) -> None:
        """A task may have several schedules, told apart by periodic_id."""

        @app.periodic(cron="0 * * * *", periodic_id="hourly")
        @app.periodic(cron="0 0 * * *", periodic_id="daily")
        @app.task
        async def cleanup(timestamp: int) -> None: ...

        assert [p.periodic_id for p in app.periodic_tasks] == ["daily", "hourly"]
        with pytest.raises(TaskAlreadyRegistered):
            app.periodic(cron="* * * * *", periodic_id="daily")(cleanup)

    def test_builtin_remove_old_jobs_can_be_periodic(self, app: App) -> None:
        """The builtin retention task can be scheduled with ``@app.periodic``."""
        remove_old_jobs = app.get_task("builtin:remove_old_jobs")

        app.periodic(cron="0 4 * * *", task_kwargs={"max_hours": 72})(remove_old_jobs)

        assert [p.task for p in app.periodic_tasks] == [remove_old_jobs]


@pytest.mark.anyio
class TestDeferrer:
    @pytest.fixture
    def app(self, connector: InMemoryConnector) -> App:
        app = App(
            connector=connector, worker_defaults={"install_signal_handlers": False}
        )

        @app.periodic(cron="* * * * *", queue="cron", priority=3, lock="cleaning")
        @app.task(name="cleanup")
        async def cleanup(timestamp: int) -> int:
            return timestamp

        return app

    async def test_defers_the_due_tick(self, app: App, connector) -> None:
        """A pass defers the tick that is due, with the schedule's options; the
        task receives the tick as ``timestamp``."""
        result = await PeriodicDeferrer(
            app.connector, app.periodic_tasks, max_delay=30
        ).run_once(T0 + 10)

        (job,) = stored_jobs(connector)
        assert result.deferred == [("cleanup", T0, job.id)]
        assert (job.task_kwargs, job.queue, job.priority, job.lock) == (
            {"timestamp": T0},
            "cron",
            3,
            "cleaning",
        )
        with anyio.fail_after(HANG_GUARD_SECONDS):
            await app.run_worker(wait=False)
        assert (stored_jobs(connector)[0].result, stored_jobs(connector)[0].status) == (
            T0,
            Status.SUCCEEDED,
        )

    async def test_each_tick_once(self, app: App, connector) -> None:
        """A second pass at the same time defers nothing; a later one defers
        only the new ticks."""
        deferrer = PeriodicDeferrer(app.connector, app.periodic_tasks, max_delay=150)
        await deferrer.run_once(T0 + 1)

        assert (await deferrer.run_once(T0 + 30)).deferred == []
        await deferrer.run_once(T0 + 2 * MINUTE)

        expected = [("cleanup", T0 + i * MINUTE) for i in range(-2, 3)]
        assert ticks(connector) == expected

    async def test_two_deferrers(self, app: App, connector) -> None:
        """Two deferrers of one app (two workers) defer each tick once."""
        first, second = (
            PeriodicDeferrer(app.connector, app.periodic_tasks),
            PeriodicDeferrer(app.connector, app.periodic_tasks),
        )
        await first.run_once(T0)

        result = await second.run_once(T0 + MINUTE)

        assert [tick for _, tick, _ in result.deferred] == [T0 + MINUTE]
        # The first one caught up on 10 ticks, 9 of them still within max_delay.
        assert result.already_done == 9
        assert (await first.run_once(T0 + MINUTE)).already_done == 1
        assert len(ticks(connector)) == 11

    @pytest.mark.parametrize(
        ("max_delay", "expected"),
        [
            pytest.param(0.5, [T0], id="now-only"),
            pytest.param(150, [T0 - 2 * MINUTE, T0 - MINUTE, T0], id="150s"),
        ],
    )
    async def test_first_pass_catches_up_to_max_delay(
        self, app: App, connector, max_delay: float, expected: list[float]
    ) -> None:
        """A first pass defers the ticks of the last ``max_delay`` seconds."""
        await PeriodicDeferrer(
            app.connector, app.periodic_tasks, max_delay=max_delay
        ).run_once(T0)

        assert [tick for _, tick in ticks(connector)] == expected

    async def test_downtime_catch_up_is_bounded(self, app: App, connector) -> None:
        """After a long downtime, only the ticks younger than ``max_delay`` run."""
        deferrer = PeriodicDeferrer(app.connector, app.periodic_tasks, max_delay=150)
        await deferrer.run_once(T0)
        connector.reset()

        await deferrer.run_once(T0 + 60 * MINUTE)

        assert [tick for _, tick in ticks(connector)] == [
            T0 + 58 * MINUTE,
            T0 + 59 * MINUTE,
            T0 + 60 * MINUTE,
        ]

    async def test_queueing_lock_clash_is_logged(
        self, connector: InMemoryConnector, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A tick whose queueing lock is taken is logged and skipped, not fatal."""
        app = App(connector=connector)

        @app.periodic(cron="* * * * *", queueing_lock="single")
        @app.task(name="report")
        async def report(timestamp: int) -> None: ...

        await report.configure(queueing_lock="single").defer_async(timestamp=0)
        caplog.set_level(logging.INFO, logger="procrastinate_anyio.periodic")

        result = await PeriodicDeferrer(
            app.connector, app.periodic_tasks, max_delay=1
        ).run_once(T0)

        assert result.deferred == []
        assert [r.__dict__["action"] for r in caplog.records] == [
            "periodic_already_enqueued"
        ]
        assert caplog.records[0].__dict__["tick"] == T0

    async def test_database_error_retried_next_pass(
        self, app: App, connector, monkeypatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A tick that could not be deferred is logged and tried again next pass."""
        defer = connector.periodic_defer
        calls = 0

        async def failing_once(params: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise ConnectorException("database down")
            return await defer(params)

        monkeypatch.setattr(connector, "periodic_defer", failing_once)
        deferrer = PeriodicDeferrer(app.connector, app.periodic_tasks, max_delay=30)

        assert (await deferrer.run_once(T0)).deferred == []
        assert [r.__dict__["action"] for r in caplog.records] == [
            "periodic_defer_error"
        ]
        await deferrer.run_once(T0 + 1)
        assert ticks(connector) == [("cleanup", T0)]

    @mock_clock()
    async def test_run_defers_every_second(self, connector) -> None:
        """``run()`` wakes up at each tick of a 6-field cron and defers it."""
        app = App(connector=connector)

        @app.periodic(cron="* * * * * *")
        @app.task(name="tick")
        async def tick(timestamp: int) -> None: ...

        start = T0 + 0.5
        deferrer = PeriodicDeferrer(
            app.connector,
            app.periodic_tasks,
            max_delay=0.9,
            clock=LoopClock(start),
        )
        with anyio.move_on_after(3.25):
            await deferrer.run()

        assert [t for _, t in ticks(connector)] == [T0, T0 + 1, T0 + 2, T0 + 3]
