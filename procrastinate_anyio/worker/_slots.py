"""The worker's slots: the table of running jobs, and how many more may start.

One unit of concurrency is one slot. A claimer reserves slots for the claim it
sends (so that two claims in flight never promise the same slot), each claimed
job then takes a slot (:meth:`Slots.add`), the slot tasks take the claimed jobs
in order (:meth:`Slots.next_job`), and a job that ends frees its slot. Whoever
waits for room (the claimers, the shutdown) waits for a change with
:meth:`Slots.wait_changed`.

The hand-over to the slot tasks is a queue and one event per idle slot task:
cheaper than a memory stream per job, and free while jobs wait (a slot task
that ends a job takes the next one without waiting). Idle slot tasks are not
woken one per job: a claim wakes one, and each one woken wakes two more while
jobs are left for them. Jobs that wait (for I/O) so reach every idle slot
task within a few loop turns, while a slot task whose jobs do not wait runs
a whole claim itself, and only a few are woken in vain.

Claiming ahead: while jobs are short, a few more jobs than there are slots may
be claimed (``prefetch``); they wait in the worker, already ``doing`` in the
database, and start as slots free up, so a slot never waits for a claim's
round trip. How many: as many as the slots get through in
:data:`PREFETCH_BUDGET_SECONDS` at the recent average job duration, at most
``prefetch``. Jobs that run long are not claimed ahead: another worker may be
idle.

Like anyio's ``CapacityLimiter``, the object owns its counts and exposes them
with :meth:`Slots.statistics`; nobody else keeps a copy.
"""

from __future__ import annotations

import collections
import math
import time
from typing import TYPE_CHECKING, Final

import anyio
import attrs

from .._context import StopReason
from ._backend import event_factory

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._context import AbortSignal
    from .._job import Job
    from ._backend import JobScope, LoopEvent

PREFETCH_BUDGET_SECONDS: Final = 0.05
"""The most work a worker claims ahead of its free slots: the jobs it holds
back from other workers end within about this long."""

_AVERAGE_WEIGHT: Final = 0.2  # of the latest job in the running average


@attrs.define(eq=False)
class RunningJob:
    """A job in flight: the cancel scope it runs in while it runs (abort,
    timeout, shutdown cancel it), and the flag a sync task reads through
    ``context.should_abort()``.

    A job claimed ahead waits for a slot; its ``timeout`` (the task's, None:
    none) only counts from :meth:`start`. The scope is its slot task's, which
    runs job after job in one scope until a stop cancels it: entering a scope
    per job would cost 4.2 µs on Trio, 1.7 on asyncio.
    """

    job: Job
    abort_signal: AbortSignal
    timeout: float | None = None
    stop_reason: StopReason | None = None
    started: bool = False
    scope: JobScope | None = None
    """The scope the job runs in, from :meth:`start` to :meth:`end`."""
    cancelled: bool = False
    """A stop or the timeout cancelled the scope while the job ran (known
    from :meth:`end` on)."""

    def start(self, scope: JobScope) -> None:
        """A slot starts the job in ``scope``: its timeout starts now."""
        self.started = True
        self.scope = scope
        if self.timeout is not None:
            scope.deadline = anyio.current_time() + self.timeout
            self.abort_signal.set_deadline(time.monotonic() + self.timeout)

    def end(self) -> bool:
        """The job's code is done: its scope goes on without it. Returns
        :attr:`cancelled` (the slot task then enters a new scope)."""
        scope = self.scope
        if scope is not None:
            self.scope = None
            self.cancelled = scope.cancel_called  # once: on Trio, it reads the clock
            if self.timeout is not None:
                scope.deadline = math.inf
        return self.cancelled

    def stop(self, reason: StopReason) -> None:
        """Cancel the job's scope if it runs (and tell a sync task); one that
        did not start yet never will. The first reason wins."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.abort_signal.set(reason)
        if self.scope is not None:
            self.scope.cancel()


@attrs.frozen(kw_only=True)
class SlotsStatistics:
    """A snapshot of :class:`Slots`."""

    total: int
    running: int
    waiting: int
    reserved: int
    free: int


class Slots:
    """``total`` slots for running jobs.

    Args:
        total: the worker's concurrency.
        refill_threshold: how many slots must be free before a job's end
            wakes the claimers: claiming one job each time one ends costs a
            round trip per job; waiting for half a batch does not.
        prefetch: the most jobs claimed ahead of the slots (0: none).
        fetch_batch_size: the most jobs per claim; with jobs claimed ahead,
            the claimers wait for half a claim's worth of room, of the slots
            and the jobs ahead together.
    """

    def __init__(
        self,
        total: int,
        *,
        refill_threshold: int,
        prefetch: int = 0,
        fetch_batch_size: int | None = None,
    ) -> None:
        if total < 1 or refill_threshold < 1 or prefetch < 0:
            raise ValueError(
                "total and refill_threshold must be at least 1, prefetch at least 0"
            )
        self.total = total
        self.prefetch = prefetch
        self._base_threshold = refill_threshold
        self._batch = fetch_batch_size or 2 * refill_threshold
        self.refill_threshold = refill_threshold
        self._ahead = 0
        self._average: float | None = None
        self._running: dict[int, RunningJob] = {}
        self._ready: collections.deque[RunningJob] = collections.deque()
        self._idle: collections.deque[LoopEvent] = collections.deque()
        self._waking = 0  # idle slot tasks woken that did not take a job yet
        self._closed = False
        self._reserved = 0
        self._changed: LoopEvent = anyio.Event()
        self._change_waiters = 0
        self._event: Callable[[], LoopEvent] | None = None
        self._stop_all: StopReason | None = None
        self._every_end_counts = False

    def __repr__(self) -> str:
        return f"Slots({self.statistics()})"

    def __len__(self) -> int:
        """How many claimed jobs run or wait for a slot."""
        return len(self._running)

    @property
    def capacity(self) -> int:
        """How many jobs may be claimed: the slots, and those ahead."""
        return self.total + self._ahead

    def free(self) -> int:
        """Room for claimed jobs not taken by a claimed job nor reserved for a
        claim in flight."""
        return self.capacity - len(self._running) - self._reserved

    def idle(self) -> bool:
        """No job claimed, no claim in flight."""
        return not self._running and not self._reserved

    def reserve(self, count: int) -> None:
        """Promise ``count`` free slots to a claim about to be sent."""
        self._reserved += count

    def unreserve(self, count: int, *, used: int) -> None:
        """The claim came back with ``used`` jobs (they :meth:`add`
        themselves). Slots it did not use are free again: a change, for a
        claimer that found none free meanwhile."""
        self._reserved -= count
        if used < count:
            self.signal_changed()

    def add(self, running: RunningJob) -> None:
        """A claimed job takes a slot, and waits for a slot task (an idle one
        is woken). After :meth:`stop_all`, it is stopped at once (it was
        claimed while the stop was decided)."""
        self._running[running.job.id] = running
        if self._stop_all is not None:
            running.stop(self._stop_all)
        self._ready.append(running)
        if not self._waking:  # a slot task already woken takes it, or wakes more
            self._wake_one()

    async def next_job(self) -> RunningJob | None:
        """For a slot task: the next claimed job, in claim order, once there
        is one; None once :meth:`close` was called and none is left."""
        ready = self._ready
        if ready:  # the common case while jobs queue: no wait, no wake
            return ready.popleft()
        while not ready:
            if self._closed:
                return None
            event = self._new_event()
            self._idle.append(event)
            try:
                await event.wait()
            except BaseException:
                if not event.is_set():
                    self._idle.remove(event)
                else:
                    self._waking -= 1
                    if ready:  # woken for a job it will not take: pass it on
                        self._wake_one()
                raise
            self._waking -= 1
        running = ready.popleft()
        # Woken for this job: wake two more while jobs are left for them, so
        # that idle slot tasks start a claim's jobs in a few loop turns
        # (doubling), however many there are. A slot task whose job does not
        # wait takes the next jobs itself: those woken in vain go back idle.
        for _ in range(2):
            if self._waking >= len(ready):
                break
            self._wake_one()
        return running

    def _wake_one(self) -> None:
        if self._idle:
            self._idle.popleft().set()
            self._waking += 1

    def take_waiting(self) -> list[RunningJob]:
        """The claimed jobs no slot task took yet, now taken out of the queue
        (the worker stops and gives them back)."""
        waiting = list(self._ready)
        self._ready.clear()
        return waiting

    def close(self) -> None:
        """No job will be added: idle slot tasks get None from
        :meth:`next_job`."""
        self._closed = True
        idle, self._idle = self._idle, collections.deque()
        self._waking += len(idle)
        for event in idle:
            event.set()

    def remove(self, job_id: int, *, duration: float | None = None) -> None:
        """A job ended (after running ``duration`` seconds; None: it never
        started): its slot is free. Wakes the waiters when a batch's worth of
        room is free, or no job runs, or every end counts (a shutdown waits
        for the last job)."""
        del self._running[job_id]
        if duration is not None and self.prefetch:
            self._measure(duration)
        if (
            not self._running
            or self._every_end_counts
            # Reserved slots count as free: their claim may come back short.
            or self.capacity - len(self._running) >= self.refill_threshold
        ):
            self.signal_changed()

    def _measure(self, duration: float) -> None:
        """Follow the jobs' running average duration, and claim ahead what
        the slots get through in the budget at that pace."""
        average = self._average
        average = (
            duration
            if average is None
            else average + (duration - average) * _AVERAGE_WEIGHT
        )
        self._average = average
        ahead = (
            self.prefetch
            if average * self.prefetch <= PREFETCH_BUDGET_SECONDS * self.total
            else int(PREFETCH_BUDGET_SECONDS * self.total / average)
        )
        if ahead != self._ahead:
            self._ahead = ahead
            self.refill_threshold = max(
                self._base_threshold, min(self._batch, self.total + ahead) // 2
            )

    def get(self, job_id: int) -> RunningJob | None:
        return self._running.get(job_id)

    def job_ids(self) -> list[int]:
        """The ids of the running jobs."""
        return list(self._running)

    def stop(self, job_id: int, reason: StopReason) -> bool:
        """Stop one running job; False when it is not running here."""
        running = self._running.get(job_id)
        if running is None:
            return False
        running.stop(reason)
        return True

    def stop_all(self, reason: StopReason) -> None:
        """Stop every running job, and any job added from now on."""
        self._stop_all = reason
        for running in list(self._running.values()):
            running.stop(reason)
        self.signal_changed()

    def wake_on_every_end(self) -> None:
        """From now on, every job's end is a change (the worker stops)."""
        self._every_end_counts = True
        self.signal_changed()

    async def drain(self, grace_seconds: float | None) -> None:
        """Let the running jobs end for up to ``grace_seconds`` (None: no
        limit), then stop the others, and any job added later, for a
        shutdown."""
        self.wake_on_every_end()
        with anyio.move_on_after(grace_seconds):
            while self._running and self._stop_all is None:
                await self.wait_changed()
        self.stop_all(StopReason.SHUTDOWN)

    async def wait_changed(self) -> None:
        """Wait for the next change (a job ended, a claim came back, a stop
        was requested...). Several tasks may wait: a change wakes them all."""
        self._change_waiters += 1
        try:
            await self._changed.wait()
        finally:
            self._change_waiters -= 1

    def signal_changed(self) -> None:
        # Nobody waits (the common case at each job's end): nothing to wake.
        if self._change_waiters:
            changed, self._changed = self._changed, self._new_event()
            changed.set()

    def _new_event(self) -> LoopEvent:
        make = self._event
        if make is None:  # the first in the loop
            make = self._event = event_factory()
        return make()

    def statistics(self) -> SlotsStatistics:
        running = sum(1 for job in self._running.values() if job.started)
        return SlotsStatistics(
            total=self.total,
            running=running,
            waiting=len(self._running) - running,
            reserved=self._reserved,
            free=self.free(),
        )
