"""Claiming ahead: while jobs are short, a worker claims a few jobs more than
it has slots; they wait in the worker (``doing``) and start as slots free up.

What must hold: ``concurrency`` jobs run at once, never more; a job claimed
ahead that never started goes back to ``todo`` as it was when the worker
stops (no attempt counted); an abort of a waiting job ends it ``aborted``
without running it; nothing is claimed ahead under global limits or with
``max_crash_recoveries=0``, or with ``prefetch=0``.

Each test runs on the in-memory connector and on PostgreSQL, on asyncio and
trio. The scenario: a few quick jobs first (the worker learns that jobs are
short), then a ``gate`` job that blocks until the test opens it, then more
quick jobs, claimed ahead while the gate runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import pytest

import procrastinate_anyio as pa
from procrastinate_anyio import Status
from tests.support import PG_HANG_GUARD_SECONDS

if TYPE_CHECKING:
    from procrastinate_anyio.connectors import AsyncConnector

pytestmark = pytest.mark.anyio

BEFORE = 4  # quick jobs before the gate: the worker learns they are short
AFTER = 8  # quick jobs after the gate, to be claimed ahead


@pytest.fixture(params=["memory", "postgres"])
def connector(request: pytest.FixtureRequest) -> AsyncConnector:
    if request.param == "memory":
        return pa.InMemoryConnector()
    pg: AsyncConnector = request.getfixturevalue("pg_connector")
    return pg


class Scenario:
    """The app, its tasks, and what ran, in order."""

    def __init__(self, connector: AsyncConnector, **app_options: Any) -> None:
        self.app = pa.App(connector=connector, **app_options)
        self.ran: list[int] = []
        self.running = 0
        self.most_running = 0
        self.gate_entered = anyio.Event()
        self.gate_open = anyio.Event()

        @self.app.task(name="quick")
        async def quick(i: int) -> None:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            await anyio.lowlevel.checkpoint()
            self.ran.append(i)
            self.running -= 1

        @self.app.task(name="gate")
        async def gate() -> None:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            self.gate_entered.set()
            await self.gate_open.wait()
            self.running -= 1

        self.quick = quick
        self.gate = gate

    async def defer(self) -> tuple[list[int], int, list[int]]:
        """Quick jobs, the gate, quick jobs: claimed in that order."""
        before = [
            await self.quick.configure(priority=10).defer_async(i=i)
            for i in range(BEFORE)
        ]
        gate = await self.gate.configure(priority=5).defer_async()
        after = [
            await self.quick.defer_async(i=i) for i in range(BEFORE, BEFORE + AFTER)
        ]
        return before, gate, after

    async def jobs(self) -> dict[int, pa.Job]:
        return {job.id: job for job in await self.app.job_manager.list_jobs_async()}


WORKER: dict[str, Any] = {"install_signal_handlers": False, "concurrency": 1}


async def doing_ids(scenario: Scenario) -> list[int]:
    jobs = await scenario.app.job_manager.list_jobs_async(status="doing")
    return sorted(job.id for job in jobs)


async def test_jobs_claimed_ahead_run_one_at_a_time(connector: AsyncConnector) -> None:
    """Jobs wait in the worker while the gate runs, then run in claim order,
    one at a time; a one-shot worker drains them all."""
    scenario = Scenario(connector)
    async with scenario.app.open_async():
        before, gate, after = await scenario.defer()
        worker = pa.Worker(scenario.app, wait=False, **WORKER)
        with anyio.fail_after(PG_HANG_GUARD_SECONDS):
            async with anyio.create_task_group() as tg:
                tg.start_soon(worker.run)
                await scenario.gate_entered.wait()
                stats = worker.statistics()
                jobs = await scenario.jobs()
                scenario.gate_open.set()
        doing = [job.id for job in jobs.values() if job.status is Status.DOING]
        assert stats.running_jobs == 1
        assert stats.waiting_jobs >= 1  # some of the jobs after the gate
        # The quick jobs before the gate may wait for the completer still.
        claimed = {gate, *after[: stats.waiting_jobs]}
        assert claimed <= set(doing) <= claimed | set(before)
        assert scenario.most_running == 1
        assert scenario.ran == list(range(BEFORE + AFTER))
        final = await scenario.jobs()
        assert {job.status for job in final.values()} == {Status.SUCCEEDED}
        assert {final[i].attempts for i in [*before, gate, *after]} == {1}


async def test_stop_gives_back_the_jobs_claimed_ahead(
    connector: AsyncConnector,
) -> None:
    """A stop while jobs wait: the running job finishes, the waiting ones are
    ``todo`` again at once, no attempt counted, and a later worker runs them."""
    scenario = Scenario(connector)
    async with scenario.app.open_async():
        _, gate, after = await scenario.defer()
        worker = pa.Worker(scenario.app, **WORKER)
        with anyio.fail_after(PG_HANG_GUARD_SECONDS):
            async with anyio.create_task_group() as tg:
                tg.start_soon(worker.run)
                await scenario.gate_entered.wait()
                waiting = worker.statistics().waiting_jobs
                worker.stop()
                # Given back while the gate still runs: no need to wait for it.
                # The database has no event to wait for.
                while await doing_ids(scenario) != [gate]:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
                scenario.gate_open.set()
        assert waiting >= 1
        jobs = await scenario.jobs()
        assert jobs[gate].status is Status.SUCCEEDED
        given_back = [jobs[i] for i in after[:waiting]]
        assert [(job.status, job.attempts) for job in given_back] == [
            (Status.TODO, 0)
        ] * waiting
        assert worker.statistics().jobs_done["todo"] == 0  # not counted as done

        await scenario.app.run_worker_async(wait=False, **WORKER)
        assert {job.status for job in (await scenario.jobs()).values()} == {
            Status.SUCCEEDED
        }


async def test_abort_of_a_waiting_job_never_runs_it(connector: AsyncConnector) -> None:
    scenario = Scenario(connector)
    async with scenario.app.open_async():
        _, _, after = await scenario.defer()
        worker = pa.Worker(
            scenario.app, wait=False, abort_job_polling_interval=0.05, **WORKER
        )
        with anyio.fail_after(PG_HANG_GUARD_SECONDS):
            async with anyio.create_task_group() as tg:
                tg.start_soon(worker.run)
                await scenario.gate_entered.wait()
                assert worker.statistics().waiting_jobs >= 1
                target = after[0]  # the first claimed ahead
                assert await scenario.app.job_manager.cancel_job_by_id_async(
                    target, abort=True
                )
                # The abort reaches the waiting job (notification or polling);
                # nothing public shows a job that waits.
                while not worker._slots.get(target).stop_reason:  # type: ignore[union-attr]
                    await anyio.lowlevel.checkpoint()
                scenario.gate_open.set()
        jobs = await scenario.jobs()
        assert jobs[target].status is Status.ABORTED
        assert BEFORE not in scenario.ran  # quick(i=BEFORE) was the target
        assert scenario.ran == [i for i in range(BEFORE + AFTER) if i != BEFORE]


@pytest.mark.parametrize(
    ("worker_options", "app_options"),
    [
        ({"prefetch": 0}, {}),
        ({"max_crash_recoveries": 0}, {}),
        ({}, {"queue_limits": {"default": {"concurrency_limit": 5}}}),
    ],
    ids=["prefetch=0", "max_crash_recoveries=0", "limits"],
)
async def test_nothing_claimed_ahead(
    connector: AsyncConnector,
    worker_options: dict[str, Any],
    app_options: dict[str, Any],
) -> None:
    scenario = Scenario(connector, **app_options)
    async with scenario.app.open_async():
        before, gate, _ = await scenario.defer()
        worker = pa.Worker(scenario.app, wait=False, **WORKER, **worker_options)
        with anyio.fail_after(PG_HANG_GUARD_SECONDS):
            async with anyio.create_task_group() as tg:
                tg.start_soon(worker.run)
                await scenario.gate_entered.wait()
                stats = worker.statistics()
                doing = await scenario.app.job_manager.list_jobs_async(status="doing")
                scenario.gate_open.set()
        assert (stats.running_jobs, stats.waiting_jobs) == (1, 0)
        # The quick jobs before the gate may wait for the completer still.
        assert {gate} <= {job.id for job in doing} <= {gate, *before}
