"""The fetcher: claims jobs for the free slots and hands them to the slot tasks.

Two claimers share the slots. The first one (:meth:`Fetcher.run`) waits for
free slots and for jobs (a notification, the polling interval, or the next
scheduled job's time), claims up to the free slots in one statement, and
hands the jobs over a memory stream. While claims come back full (a backlog),
the second one (:meth:`Fetcher.run_second_claimer`) claims too, so that two
claims are in flight: one round trip's wait overlaps the other's work.

Claims are batched: while jobs run, a claimer waits until half a batch of
slots is free (``Slots.refill_threshold``) rather than claiming one job each
time one ends. While jobs are short, a few are claimed ahead of the free
slots (see :mod:`._slots`), so that the slots do not wait for the claims.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

import anyio

from .._backoff import Backoff
from .._context import AbortSignal
from .._exceptions import ConnectorException
from ..connectors._types import FetchParams
from ._slots import RunningJob

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._clock import Clock
    from .._job import Job
    from .._limits import Limit
    from .._task import TaskRegistry
    from ..connectors._protocols import AsyncConnector
    from ._options import WorkerOptions
    from ._slots import Slots

logger = logging.getLogger("procrastinate_anyio.worker")

FETCH_ERROR_BACKOFF_START_SECONDS: Final = 0.05
FETCH_ERROR_BACKOFF_MAX_SECONDS: Final = 5.0


class Fetcher:
    """Claims jobs into ``slots``.

    Args:
        connector: where jobs are claimed.
        registry: finds each job's task (for its timeout).
        slots: the running-job table.
        options: the worker's options (queues, batch size, polling, one-shot).
        worker_id: the claiming worker.
        clock: the time of day (for the next scheduled job).
        outcomes_pending: whether finished jobs wait to be written; a
            one-shot worker only stops once they are (a retry would bring a
            job back).
        limits: the global limits each claim respects.
    """

    def __init__(
        self,
        connector: AsyncConnector,
        registry: TaskRegistry,
        slots: Slots,
        options: WorkerOptions,
        *,
        worker_id: int,
        clock: Clock,
        outcomes_pending: Callable[[], bool],
        limits: tuple[Limit, ...] = (),
    ) -> None:
        self._connector = connector
        self._registry = registry
        self._slots = slots
        self._options = options
        self._worker_id = worker_id
        self._clock = clock
        self._outcomes_pending = outcomes_pending
        self._limits = limits
        # A rate limit frees a place every period/count seconds: an idle
        # claimer looks again then rather than at the polling interval.
        self._limit_recheck = min(
            (
                limit.rate.period_seconds / limit.rate.count
                for limit in limits
                if limit.rate is not None
            ),
            default=None,
        )
        self._wakeup = anyio.Event()
        self._stopped = False
        self._fetching = True
        self._more_jobs_likely = True
        self._backoff = Backoff(
            FETCH_ERROR_BACKOFF_START_SECONDS, FETCH_ERROR_BACKOFF_MAX_SECONDS
        )
        self.last_fetch_at: float | None = None

    def wake(self) -> None:
        """Jobs may be ready: an idle claimer claims now."""
        self._wakeup.set()

    @property
    def limited(self) -> bool:
        """Claims respect global limits."""
        return bool(self._limits)

    @property
    def stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        """Claim no more."""
        self._stopped = True
        self._wakeup.set()
        self._slots.signal_changed()

    async def run(self) -> None:
        """The first claimer, until :meth:`stop` (or, one-shot, until no job
        is left)."""
        options = self._options
        slots = self._slots
        while not self._stopped:
            free = slots.free()
            if free <= 0 or (len(slots) and free < slots.refill_threshold):
                await slots.wait_changed()
                continue
            if not self._more_jobs_likely and options.wait:
                with anyio.move_on_after(await self._idle_timeout()):
                    await self._wakeup.wait()
                self._wakeup = anyio.Event()
                if self.stopped:  # stop() may have run meanwhile
                    break
                free = slots.free()
                if free <= 0:
                    continue
            # One-shot: an outcome written during the claim may have freed a
            # lock the claim could not see yet; only a claim that started
            # with nothing left to write proves there is no job left.
            pending_before = not options.wait and self._outcomes_pending()
            fetched = await self._claim(min(free, options.fetch_batch_size))
            if fetched is None or fetched or options.wait:
                continue
            # Nothing running, nothing claimed by the second claimer meanwhile
            # (its reservation), nothing left to write: no job is left.
            if slots.idle() and not self._outcomes_pending():
                if pending_before:
                    continue  # written during the claim (that change is past)
                logger.info(
                    "No job left, stopping (one-shot)",
                    extra={"action": "worker_no_job_left"},
                )
                break
            await slots.wait_changed()
        self._fetching = False
        slots.signal_changed()

    async def run_second_claimer(self) -> None:
        """Claims while claims come back full; idle otherwise (a notification
        causes one claim, not two)."""
        slots = self._slots
        while self._fetching and not self._stopped:
            free = slots.free()
            if not self._more_jobs_likely or free < slots.refill_threshold:
                await slots.wait_changed()
                continue
            await self._claim(min(free, self._options.fetch_batch_size))

    async def _claim(self, limit: int) -> list[Job] | None:
        """Claim up to ``limit`` jobs and hand them to the slots; None after a
        database error (logged, then a backoff)."""
        options = self._options
        slots = self._slots
        slots.reserve(limit)
        fetched: list[Job] = []
        try:
            fetched = await self._connector.job_fetch_many(
                FetchParams(
                    worker_id=self._worker_id,
                    queues=options.queues,
                    limit=limit,
                    limits=self._limits,
                )
            )
        except ConnectorException as exc:
            slots.unreserve(limit, used=0)
            logger.warning(
                "Could not fetch jobs, retrying in %.2f s: %s",
                self._backoff.delay,
                exc,
                extra={"action": "fetch_error", "worker": options.name},
            )
            await self._backoff.sleep()
            return None
        except BaseException:
            slots.unreserve(limit, used=0)
            raise
        slots.unreserve(limit, used=len(fetched))
        self._backoff.reset()
        self.last_fetch_at = self._clock.now().timestamp()
        full = len(fetched) == limit
        if full and not self._more_jobs_likely:
            slots.signal_changed()  # the second claimer may start
        self._more_jobs_likely = full
        for job in fetched:
            slots.add(self._running_job(job))
        if fetched and logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "Fetched %d job(s)",
                len(fetched),
                extra={
                    "action": "fetched_jobs",
                    "count": len(fetched),
                    "worker": options.name,
                },
            )
        return fetched

    def _running_job(self, job: Job) -> RunningJob:
        """The job with the task's timeout (which counts from the job's
        start: it may wait for a slot)."""
        try:  # by name or alias, as the runner finds it
            timeout = self._registry.get_task(job.task_name).timeout
        except Exception:
            # Unknown task, or a lookup that raises (user code): the runner
            # meets the same error and fails the job; the fetcher goes on.
            timeout = None
        return RunningJob(job=job, abort_signal=AbortSignal(), timeout=timeout)

    async def _idle_timeout(self) -> float:
        """How long an idle claimer waits for a notification: the polling
        interval, or less when a scheduled job is due sooner (so it starts on
        time without busy polling)."""
        interval = self._options.fetch_job_polling_interval
        if self._limit_recheck is not None:
            interval = min(interval, self._limit_recheck)
        try:
            due = await self._connector.job_next_scheduled_at(self._options.queues)
        except ConnectorException:
            return interval
        if due is None:
            return interval
        wait = (due - self._clock.now()).total_seconds()
        return min(interval, max(wait, 0.0))
