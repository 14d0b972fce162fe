"""The worker's slots: the table of running jobs, and how many more may start.

One unit of concurrency is one slot. A claimer reserves slots for the claim it
sends (so that two claims in flight never promise the same slot), each claimed
job then takes a slot, and a job that ends frees it. Whoever waits for room
(the claimers, the shutdown) waits for a change with :meth:`Slots.wait_changed`.

Like anyio's ``CapacityLimiter``, the object owns its counts and exposes them
with :meth:`Slots.statistics`; nobody else keeps a copy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import attrs

from .._context import StopReason

if TYPE_CHECKING:
    from .._context import AbortSignal
    from .._job import Job


@attrs.define(eq=False)
class RunningJob:
    """A job in flight: its own cancel scope (abort, timeout, shutdown), and
    the flag a sync task reads through ``context.should_abort()``."""

    job: Job
    scope: anyio.CancelScope
    abort_signal: AbortSignal
    stop_reason: StopReason | None = None

    def stop(self, reason: StopReason) -> None:
        """Cancel the job's scope (and tell a sync task). The first reason wins."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.abort_signal.set(reason)
        self.scope.cancel()


@attrs.frozen(kw_only=True)
class SlotsStatistics:
    """A snapshot of :class:`Slots`."""

    total: int
    running: int
    reserved: int
    free: int


class Slots:
    """``total`` slots for running jobs.

    Args:
        total: the worker's concurrency.
        refill_threshold: how many slots must be free before a job's end
            wakes the claimers: claiming one job each time one ends costs a
            round trip per job; waiting for half a batch does not.
    """

    def __init__(self, total: int, *, refill_threshold: int) -> None:
        if total < 1 or refill_threshold < 1:
            raise ValueError("total and refill_threshold must be at least 1")
        self.total = total
        self.refill_threshold = refill_threshold
        self._running: dict[int, RunningJob] = {}
        self._reserved = 0
        self._changed = anyio.Event()
        self._stop_all: StopReason | None = None
        self._every_end_counts = False

    def __repr__(self) -> str:
        return f"Slots({self.statistics()})"

    def __len__(self) -> int:
        """How many jobs run."""
        return len(self._running)

    def free(self) -> int:
        """Slots neither running a job nor reserved for a claim in flight."""
        return self.total - len(self._running) - self._reserved

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
        """A claimed job takes a slot. After :meth:`stop_all`, it is stopped
        at once (it was claimed while the stop was decided)."""
        self._running[running.job.id] = running
        if self._stop_all is not None:
            running.stop(self._stop_all)

    def remove(self, job_id: int) -> None:
        """A job ended: its slot is free. Wakes the waiters when a batch's
        worth of slots is free, or no job runs, or every end counts (a
        shutdown waits for the last job)."""
        del self._running[job_id]
        if (
            not self._running
            or self._every_end_counts
            # Reserved slots count as free: their claim may come back short.
            or self.total - len(self._running) >= self.refill_threshold
        ):
            self.signal_changed()

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
        await self._changed.wait()

    def signal_changed(self) -> None:
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    def statistics(self) -> SlotsStatistics:
        running = len(self._running)
        return SlotsStatistics(
            total=self.total,
            running=running,
            reserved=self._reserved,
            free=self.total - running - self._reserved,
        )
