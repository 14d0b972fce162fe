"""Tests of the worker's slots: counts, reservations, stops and the change
events that wake the claimers."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import anyio
import anyio.abc
import pytest

from procrastinate_anyio import Job, Status
from procrastinate_anyio._context import AbortSignal, StopReason
from procrastinate_anyio.worker._slots import (
    PREFETCH_BUDGET_SECONDS,
    RunningJob,
    Slots,
    SlotsStatistics,
)
from tests.support import HANG_GUARD_SECONDS, mock_clock

if TYPE_CHECKING:
    from collections.abc import Callable

    from procrastinate_anyio.worker._backend import LoopEvent

pytestmark = pytest.mark.anyio


def running(job_id: int) -> RunningJob:
    job = Job(id=job_id, queue="q", task_name="t", status=Status.DOING)
    return RunningJob(job=job, abort_signal=AbortSignal())


class TestCounts:
    async def test_reservations_and_jobs_take_slots(self) -> None:
        """free() counts running jobs and reservations; statistics() agrees."""
        slots = Slots(4, refill_threshold=2)
        slots.reserve(2)
        job = running(1)
        slots.add(job)

        assert slots.free() == 1
        assert slots.statistics() == SlotsStatistics(
            total=4, running=0, waiting=1, reserved=2, free=1
        )
        job.start(anyio.CancelScope())
        assert slots.statistics() == SlotsStatistics(
            total=4, running=1, waiting=0, reserved=2, free=1
        )
        slots.unreserve(2, used=2)
        slots.remove(1)
        assert (slots.free(), len(slots), slots.job_ids()) == (4, 0, [])

    @pytest.mark.parametrize(
        ("total", "threshold"),
        [pytest.param(0, 1, id="total"), pytest.param(1, 0, id="threshold")],
    )
    def test_bad_sizes(self, total: int, threshold: int) -> None:
        """Sizes below one are refused."""
        with pytest.raises(ValueError, match="at least 1"):
            Slots(total, refill_threshold=threshold)


async def woken_by(slots: Slots, action: Callable[[], object]) -> bool:
    """Whether ``action`` wakes a task waiting for a change."""
    woken = anyio.Event()

    async def wait(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        task_status.started()
        await slots.wait_changed()
        woken.set()

    async with anyio.create_task_group() as tg:
        await tg.start(wait)
        action()
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
    return woken.is_set()


class TestClaimingAhead:
    """How many jobs are claimed ahead follows the jobs' recent duration."""

    def ended(self, slots: Slots, seconds: float, count: int = 1) -> None:
        for i in range(count):
            slots.add(running(1000 + i))
            slots.remove(1000 + i, duration=seconds)

    async def test_nothing_ahead_before_a_job_ended(self) -> None:
        slots = Slots(2, refill_threshold=1, prefetch=10, fetch_batch_size=100)
        assert (slots.capacity, slots.free()) == (2, 2)

    async def test_short_jobs_fill_the_prefetch(self) -> None:
        slots = Slots(2, refill_threshold=1, prefetch=10, fetch_batch_size=100)
        self.ended(slots, 0.0001)
        assert (slots.capacity, slots.free()) == (12, 12)
        # Half of a claim's worth of room, of the slots and the jobs ahead.
        assert slots.refill_threshold == 6

    async def test_the_budget_bounds_the_work_ahead(self) -> None:
        """Jobs of 10 ms on 2 slots: 2 * 50 ms / 10 ms = 10 jobs, not 20."""
        slots = Slots(2, refill_threshold=1, prefetch=20, fetch_batch_size=100)
        self.ended(slots, PREFETCH_BUDGET_SECONDS / 5)
        assert slots.capacity == 2 + 10

    async def test_long_jobs_are_not_claimed_ahead(self) -> None:
        slots = Slots(2, refill_threshold=1, prefetch=10, fetch_batch_size=100)
        self.ended(slots, 0.0001)
        self.ended(slots, 10.0, count=3)  # the average follows
        assert slots.capacity == 2
        assert slots.refill_threshold == 1

    async def test_prefetch_zero_claims_for_the_slots_only(self) -> None:
        slots = Slots(2, refill_threshold=1, fetch_batch_size=100)
        self.ended(slots, 0.0001)
        assert slots.capacity == 2

    async def test_a_job_that_never_started_is_not_measured(self) -> None:
        slots = Slots(2, refill_threshold=1, prefetch=10, fetch_batch_size=100)
        slots.add(running(1))
        slots.remove(1)  # given back unstarted
        assert slots.capacity == 2

    async def test_the_timeout_counts_from_the_start(self) -> None:
        """The timeout is the deadline of the scope the job starts in, until
        the job ends (the slot task's scope goes on without one)."""
        job = RunningJob(
            job=Job(id=1, queue="q", task_name="t", status=Status.DOING),
            abort_signal=AbortSignal(),
            timeout=5.0,
        )
        scope = anyio.CancelScope()
        before = anyio.current_time()
        job.start(scope)
        assert before + 5.0 <= scope.deadline <= anyio.current_time() + 5.0
        assert (job.started, job.scope) == (True, scope)
        assert not job.end()  # not cancelled
        assert (scope.deadline, job.scope) == (float("inf"), None)


class TestChanges:
    async def test_a_job_end_is_a_change_only_past_the_threshold(self) -> None:
        """A job's end wakes the claimers once half a batch is free, or when
        the last job ends, not on every end."""
        slots = Slots(4, refill_threshold=2)
        for job_id in (1, 2, 3, 4):
            slots.add(running(job_id))

        ends = [
            await woken_by(slots, functools.partial(slots.remove, job_id))
            for job_id in (1, 2, 3, 4)
        ]

        assert ends == [False, True, True, True]

    async def test_every_end_counts_once_stopping(self) -> None:
        """After wake_on_every_end (a shutdown), each job's end is a change."""
        slots = Slots(4, refill_threshold=4)
        for job_id in (1, 2):
            slots.add(running(job_id))
        slots.wake_on_every_end()

        assert await woken_by(slots, functools.partial(slots.remove, 1))

    async def test_a_short_claim_is_a_change(self) -> None:
        """Slots a claim reserved and did not use wake the other claimer."""
        slots = Slots(4, refill_threshold=2)
        woken = []
        for used in (4, 1):
            slots.reserve(4)
            woken.append(
                await woken_by(slots, functools.partial(slots.unreserve, 4, used=used))
            )

        assert woken == [False, True]


class TestHandOff:
    """Claimed jobs go to the idle slot tasks in claim order; a slot task
    whose jobs do not wait takes the next ones itself, and jobs that wait
    spread over every idle slot task."""

    @staticmethod
    async def slot_task(
        slots: Slots,
        name: int,
        taken: list[tuple[int, int]],
        gate: anyio.Event | None,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        task_status.started()
        while (job := await slots.next_job()) is not None:
            taken.append((name, job.job.id))
            if gate is not None:
                await gate.wait()

    async def test_jobs_that_do_not_wait_take_one_slot_task(self) -> None:
        """Ten jobs for ten idle slot tasks: the first one woken runs them all
        (the others, woken for nothing, go back to waiting)."""
        slots = Slots(10, refill_threshold=1)
        taken: list[tuple[int, int]] = []
        waits = 0
        new_event = slots._new_event

        def counted() -> LoopEvent:  # one per wait of an idle slot task
            nonlocal waits
            waits += 1
            return new_event()

        slots._new_event = counted  # type: ignore[method-assign]
        with anyio.fail_after(HANG_GUARD_SECONDS):
            async with anyio.create_task_group() as tg:
                for name in range(10):
                    await tg.start(self.slot_task, slots, name, taken, None)
                await anyio.wait_all_tasks_blocked()
                waits = 0
                for job_id in range(1, 11):
                    slots.add(running(job_id))
                await anyio.wait_all_tasks_blocked()
                slots.close()
        assert [job_id for _, job_id in taken] == list(range(1, 11))
        assert len({name for name, _ in taken}) == 1
        # The one that ran them, and the two it woke, wait again; waking a
        # slot task per job would have made nine wait again.
        assert waits == 3

    @pytest.mark.parametrize("jobs", [1, 2, 7, 16])
    async def test_jobs_that_wait_start_on_every_idle_slot_task(
        self, jobs: int
    ) -> None:
        """Jobs that wait each start on a slot task of their own, as many as
        there are idle slot tasks; the rest wait for a slot task to end one."""
        slots = Slots(8, refill_threshold=1)
        taken: list[tuple[int, int]] = []
        gate = anyio.Event()
        with anyio.fail_after(HANG_GUARD_SECONDS):
            async with anyio.create_task_group() as tg:
                for name in range(8):
                    await tg.start(self.slot_task, slots, name, taken, gate)
                await anyio.wait_all_tasks_blocked()
                for job_id in range(1, jobs + 1):
                    slots.add(running(job_id))
                await anyio.wait_all_tasks_blocked()
                started = min(jobs, 8)
                assert sorted(job_id for _, job_id in taken) == list(
                    range(1, started + 1)
                )
                assert len({name for name, _ in taken}) == started
                gate.set()
                await anyio.wait_all_tasks_blocked()
                slots.close()
        assert sorted(job_id for _, job_id in taken) == list(range(1, jobs + 1))

    async def test_a_woken_slot_task_cancelled_passes_its_job_on(self) -> None:
        """A slot task woken for a job as it is cancelled leaves the job to
        another idle slot task."""
        slots = Slots(2, refill_threshold=1)
        taken: list[tuple[int, int]] = []
        with anyio.fail_after(HANG_GUARD_SECONDS):
            async with anyio.create_task_group() as tg:
                async with anyio.create_task_group() as first:
                    await first.start(self.slot_task, slots, 0, taken, None)
                    await tg.start(self.slot_task, slots, 1, taken, None)
                    await anyio.wait_all_tasks_blocked()
                    # Cancelled, then woken (the first idle) before it runs.
                    first.cancel_scope.cancel()
                    slots.add(running(1))
                await anyio.wait_all_tasks_blocked()
                slots.close()
        assert taken == [(1, 1)]


class TestStops:
    async def test_stop_one(self) -> None:
        """stop() cancels that job's scope with its reason; unknown ids: False."""
        slots = Slots(2, refill_threshold=1)
        job = running(1)
        slots.add(job)

        scope = anyio.CancelScope()
        job.start(scope)

        assert slots.stop(1, StopReason.ABORT)
        assert not slots.stop(2, StopReason.ABORT)
        assert (scope.cancel_called, job.stop_reason) == (True, StopReason.ABORT)
        assert job.end()  # cancelled: the slot task leaves the scope

    async def test_a_stop_before_the_start_cancels_no_scope(self) -> None:
        """A job stopped while it waits (claimed ahead) has no scope yet:
        only its reason is kept (it never starts); after its end, a stop
        leaves the scope alone (the slot task's next job runs in it)."""
        waiting, ended = running(1), running(2)
        waiting.stop(StopReason.ABORT)
        assert (waiting.scope, waiting.stop_reason) == (None, StopReason.ABORT)
        scope = anyio.CancelScope()
        ended.start(scope)
        assert not ended.end()
        ended.stop(StopReason.SHUTDOWN)
        assert not scope.cancel_called

    async def test_stop_all_stops_later_jobs_too(self) -> None:
        """After stop_all, a job claimed meanwhile is stopped as it arrives."""
        slots = Slots(2, refill_threshold=1)
        first, late = running(1), running(2)
        slots.add(first)
        slots.stop_all(StopReason.SHUTDOWN)
        slots.add(late)

        assert [first.stop_reason, late.stop_reason] == [StopReason.SHUTDOWN] * 2

    @mock_clock()
    async def test_drain_waits_then_stops(self) -> None:
        """drain() lets jobs end within the grace period, then stops the rest."""
        slots = Slots(2, refill_threshold=1)
        quick, slow = running(1), running(2)
        slots.add(quick)
        slots.add(slow)
        async with anyio.create_task_group() as tg:
            tg.start_soon(slots.drain, 30)
            await anyio.sleep(10)
            slots.remove(1)  # the quick job ends within the grace period
            await anyio.sleep(10)
            assert slow.stop_reason is None
        assert anyio.current_time() == pytest.approx(30)
        assert (quick.stop_reason, slow.stop_reason) == (None, StopReason.SHUTDOWN)

    async def test_drain_ends_when_the_last_job_ends(self) -> None:
        """drain() returns as soon as no job runs."""
        slots = Slots(2, refill_threshold=2)
        job = running(1)
        slots.add(job)
        with anyio.fail_after(HANG_GUARD_SECONDS):
            async with anyio.create_task_group() as tg:
                tg.start_soon(slots.drain, None)
                await anyio.wait_all_tasks_blocked()
                slots.remove(1)
        assert job.stop_reason is None
