"""The worker: one AnyIO task group that fetches jobs and runs them.

Its tree::

    Worker.run                     (shielded from the caller's cancellation, see below)
    ├── completer                  writes outcomes in batches; ends after the last job
    ├── services (one cancel scope)
    │   ├── listener               LISTEN/NOTIFY, reconnects with backoff
    │   ├── heartbeat              keeps the worker row alive
    │   ├── abort poller           polls abort requests (NOTIFY is the fast path)
    │   ├── maintenance            recovers dead workers' jobs (one worker at a time)
    │   └── periodic deferrer      defers cron ticks, once per tick across workers
    ├── signals                    SIGINT/SIGTERM: first = graceful, second = now
    └── jobs (task group)
        ├── fetcher loop           claims up to the free slots in one statement
        └── one slot task per unit of concurrency, running claimed jobs one
            at a time, each job in its own cancel scope (abort, timeout)

Every service is supervised: an unexpected error stops the worker (jobs are
cancelled, outcomes flushed, the worker unregistered) and is then raised to
the caller. Database errors are expected and retried with backoff.

Cancellation of the caller's scope (an ASGI lifespan ending, ``tg.cancel_scope
.cancel()``) means a graceful stop: the tree runs under a shield, and a guard
task outside it turns the cancellation into :meth:`Worker.stop`. The shutdown
is bounded by ``shutdown_graceful_timeout`` and the final flush by
``FINAL_FLUSH_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import datetime
import logging
import signal
import sys
import threading
import time
import types
from typing import TYPE_CHECKING, Any, Final

import anyio
import attrs
from anyio.abc import TaskStatus

from .._context import AbortSignal
from .._exceptions import ConnectorException, TaskNotFound
from .._job import Job, Status
from .._periodic import DEFAULT_MAX_DELAY_SECONDS
from ..connectors._types import FetchParams, JobOutcome, Notification
from ._completer import Completer
from ._heartbeat import Heartbeat
from ._listener import Listener
from ._options import DeleteJobs, WorkerOptions
from ._periodic_deferrer import PeriodicDeferrer
from ._rescuer import Maintenance
from ._runner import RunningJob, StopReason, run_job

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from anyio.abc import TaskGroup
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from .._app import App

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

logger = logging.getLogger("procrastinate_anyio.worker")

FINAL_FLUSH_TIMEOUT_SECONDS: Final = 10.0
UNREGISTER_TIMEOUT_SECONDS: Final = 5.0
FETCH_ERROR_BACKOFF_START_SECONDS: Final = 0.05
FETCH_ERROR_BACKOFF_MAX_SECONDS: Final = 5.0


class _TrackedStatus(TaskStatus[None]):
    """Forwards ``started()`` and remembers whether it was called."""

    def __init__(self, inner: TaskStatus[None]) -> None:
        self._inner = inner
        self.called = False

    def started(self, value: object = None) -> None:
        self.called = True
        self._inner.started()


@attrs.frozen(kw_only=True)
class WorkerStatistics:
    """A snapshot of a worker (``worker.statistics()``)."""

    worker_id: int | None
    name: str
    running_jobs: int
    free_slots: int
    jobs_done: Mapping[str, int]
    last_fetch_at: float | None
    listening: bool
    stopping: bool


class Worker:
    """Runs jobs of an app. Usually made by :meth:`App.run_worker`; make one
    yourself to keep a handle for :meth:`stop` and :meth:`statistics`.

    Args:
        app: the app whose tasks run.
        **options: the fields of :class:`WorkerOptions`.
    """

    def __init__(self, app: App, **options: Any) -> None:
        self.app = app
        self.options = WorkerOptions(**options)
        self.worker_id: int | None = None
        self._running: dict[int, RunningJob] = {}
        self._wakeup = anyio.Event()
        self._changed = anyio.Event()
        self._stop_requested = False
        self._stop_now = False
        self._errors: list[BaseException] = []
        self._more_jobs_likely = True
        self._last_fetch_at: float | None = None
        self._jobs_done: dict[str, int] = {status.value: 0 for status in Status}
        self._unwritten = 0  # outcomes sent to the completer, not written yet
        self._reserved = 0  # slots promised to claims in flight
        self._fetching = True
        self._fetch_backoff = FETCH_ERROR_BACKOFF_START_SECONDS
        self._listener: Listener | None = None
        self._thread_limiter: anyio.CapacityLimiter | None = None
        self._refill_threshold = max(
            1, min(self.options.fetch_batch_size, self.options.concurrency) // 2
        )
        # Read-only and shared by the jobs: a task cannot change the next one's.
        self._additional_context = types.MappingProxyType(
            dict(self.options.additional_context)
        )
        self._ran = False

    def __repr__(self) -> str:
        return f"Worker({self.options.name!r}, id={self.worker_id})"

    # -- control ---------------------------------------------------------------

    def stop(self, *, now: bool = False) -> None:
        """Ask the worker to stop: no new job starts; running jobs get
        ``shutdown_graceful_timeout`` to finish (``now``: they are cancelled at
        once). Safe to call more than once, from the worker's event loop."""
        if not self._stop_requested:
            logger.info(
                "Stop requested%s",
                " (now)" if now else "",
                extra={"action": "worker_stop_requested", "worker": self.options.name},
            )
        self._stop_requested = True
        self._stop_now = self._stop_now or now
        self._poke()

    def statistics(self) -> WorkerStatistics:
        return WorkerStatistics(
            worker_id=self.worker_id,
            name=self.options.name,
            running_jobs=len(self._running),
            free_slots=self.options.concurrency - len(self._running),
            jobs_done=dict(self._jobs_done),
            last_fetch_at=self._last_fetch_at,
            listening=self._listener is not None and self._listener.connected,
            stopping=self._stop_requested,
        )

    def _job_ended(self) -> None:
        """Wake the fetcher when a batch's worth of slots is free (not for
        every job: one wake-up per job costs more than a no-op job), or the
        last job ended, or the worker is stopping."""
        free = self.options.concurrency - len(self._running)
        if not self._running or free >= self._refill_threshold or self._stop_requested:
            self._signal_change()

    def _poke(self) -> None:
        """Wake whatever waits for a change (a job ended, a stop request...)."""
        self._wakeup.set()
        self._signal_change()

    def _fail(self, exc: BaseException) -> None:
        self._errors.append(exc)
        logger.error(
            "Worker component failed, stopping: %r",
            exc,
            exc_info=exc,
            extra={"action": "worker_component_failed", "worker": self.options.name},
        )
        self.stop(now=True)

    # -- running -----------------------------------------------------------------

    async def run(
        self, *, task_status: TaskStatus[Worker] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Run until stopped. ``task_status.started(worker)`` fires once the
        worker is registered and listening.

        Raises:
            BaseExceptionGroup: a component failed (after a clean shutdown).
            ConnectorException: the worker could not register.

        Cancellation: cancelling the caller's scope stops the worker
        gracefully (bounded by ``shutdown_graceful_timeout``), then the
        cancellation propagates.
        """
        if self._ran:
            raise RuntimeError("a Worker runs once; make a new one")
        self._ran = True
        # Outside the task group below, so that a registration error reaches
        # the caller as is, not inside an exception group.
        with anyio.CancelScope(shield=True):
            self.worker_id = await self.app.connector.worker_register(
                self.options.name, self.options.queues
            )
        finished = anyio.Event()

        async def guard() -> None:
            try:
                await finished.wait()
            finally:
                if not finished.is_set():
                    self.stop()

        async with anyio.create_task_group() as tg:
            tg.start_soon(guard)
            # Signals are handled until the very end (final flush and
            # unregister included), so a late Ctrl-C cannot kill those.
            signals = anyio.CancelScope()
            if (
                self.options.install_signal_handlers
                and threading.current_thread() is threading.main_thread()
            ):
                await tg.start(self._handle_signals, signals)
            with anyio.CancelScope(shield=True):
                try:
                    await self._run(task_status)
                finally:
                    finished.set()
                    signals.cancel()
        if self._errors:
            raise BaseExceptionGroup("the worker stopped on error", self._errors)

    async def _run(self, task_status: TaskStatus[Worker]) -> None:
        options = self.options
        connector = self.app.connector
        self._thread_limiter = anyio.CapacityLimiter(options.concurrency)
        assert self.worker_id is not None
        log_extra = {"worker": options.name, "worker_id": self.worker_id}
        logger.info(
            "Worker %s started: queues %s, concurrency %d",
            options.name,
            ", ".join(options.queues) if options.queues else "all",
            options.concurrency,
            extra={"action": "worker_start", "queues": options.queues, **log_extra},
        )
        send, receive = anyio.create_memory_object_stream[JobOutcome](
            options.completer_buffer_size
        )
        completer = Completer(
            connector,
            receive,
            batch_size=options.completer_batch_size,
            flush_interval=options.completer_flush_interval,
            on_written=self._count_written,
        )
        try:
            async with anyio.create_task_group() as tg:
                completer_scope = anyio.CancelScope()
                tg.start_soon(self._supervise, completer.run, completer_scope)
                services_scope = anyio.CancelScope()
                await tg.start(self._run_services, services_scope)
                task_status.started(self)
                try:
                    async with send, anyio.create_task_group() as jobs:
                        await self._run_jobs(jobs, send)
                finally:
                    services_scope.cancel()
                    completer_scope.deadline = (
                        anyio.current_time() + FINAL_FLUSH_TIMEOUT_SECONDS
                    )
            if completer.pending:
                logger.error(
                    "%d job outcome(s) could not be written; stalled-job recovery will "
                    "bring those jobs back",
                    len(completer.pending),
                    extra={
                        "action": "completer_lost",
                        "jobs": [o.job_id for o in completer.pending],
                        **log_extra,
                    },
                )
        finally:
            with anyio.move_on_after(UNREGISTER_TIMEOUT_SECONDS, shield=True):
                try:
                    await connector.worker_unregister(self.worker_id)
                except ConnectorException as exc:
                    logger.warning(
                        "Could not unregister: %s",
                        exc,
                        extra={"action": "worker_unregister_error", **log_extra},
                    )
            logger.info(
                "Worker %s stopped",
                options.name,
                extra={"action": "worker_stop", **log_extra},
            )

    async def _supervise(
        self,
        func: Callable[..., Any],
        scope: anyio.CancelScope | None,
        *args: Any,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run a component; an unexpected error stops the worker instead of
        tearing the task group down (so jobs still end cleanly)."""
        try:
            if scope is None:
                await func(*args)
            else:
                with scope:
                    await func(*args)
        except Exception as exc:
            self._fail(exc)

    async def _run_services(
        self,
        scope: anyio.CancelScope,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        options = self.options
        assert self.worker_id is not None
        with scope:
            async with anyio.create_task_group() as tg:
                heartbeat = Heartbeat(
                    self.app.connector,
                    worker_id=self.worker_id,
                    name=options.name,
                    queues=options.queues,
                    interval=options.update_heartbeat_interval,
                )
                tg.start_soon(self._supervise, heartbeat.run, None)
                tg.start_soon(self._supervise, self._poll_aborts, None)
                maintenance = Maintenance(
                    self.app,
                    stalled_worker_timeout=options.stalled_worker_timeout,
                    interval=min(
                        options.update_heartbeat_interval,
                        options.fetch_job_polling_interval,
                    ),
                )
                tg.start_soon(self._supervise, maintenance.run, None)
                periodic = PeriodicDeferrer(
                    self.app,
                    max_delay=float(
                        self.app.periodic_defaults.get(
                            "max_delay", DEFAULT_MAX_DELAY_SECONDS
                        )
                    ),
                )
                tg.start_soon(self._supervise, periodic.run, None)
                if options.listen_notify:
                    self._listener = Listener(
                        self.app.connector,
                        self._on_notification,
                        on_listening=self._wakeup.set,
                    )
                    await tg.start(self._supervise_started, self._listener.run)
                task_status.started()

    async def _supervise_started(
        self,
        func: Callable[..., Any],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Like :meth:`_supervise` for a component that signals readiness."""
        status = _TrackedStatus(task_status)
        try:
            await func(task_status=status)
        except Exception as exc:
            self._fail(exc)
            if not status.called:
                task_status.started()

    async def _handle_signals(
        self,
        scope: anyio.CancelScope,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        with (
            scope,
            anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals,
        ):
            task_status.started()
            async for signum in signals:
                name = signal.Signals(signum).name
                now = self._stop_requested
                logger.info(
                    "Received %s: %s",
                    name,
                    "cancelling running jobs" if now else "stopping gracefully",
                    extra={
                        "action": "worker_signal",
                        "signal": name,
                        "worker": self.options.name,
                    },
                )
                self.stop(now=now)

    def _on_notification(self, notification: Notification) -> None:
        if notification.kind == "abort":
            running = self._running.get(notification.job_id or 0)
            if running is not None:
                running.stop(StopReason.ABORT)
        elif notification.kind == "defer" and (
            notification.queues is None
            or self.options.queues is None
            or any(queue in self.options.queues for queue in notification.queues)
        ):
            self._wakeup.set()

    async def _poll_aborts(self) -> None:
        while True:
            await anyio.sleep(self.options.abort_job_polling_interval)
            if not self._running:
                continue
            try:
                ids = await self.app.connector.job_abort_requested_many(
                    list(self._running)
                )
            except ConnectorException as exc:
                logger.warning(
                    "Could not poll abort requests: %s",
                    exc,
                    extra={"action": "abort_poll_error"},
                )
                continue
            for job_id in ids:
                running = self._running.get(job_id)
                if running is not None:
                    running.stop(StopReason.ABORT)

    async def _wait_for_change(self) -> None:
        """Wait until something changes (a job ends, a stop is requested...).
        Several tasks may wait: :meth:`_signal_change` wakes them all."""
        await self._changed.wait()

    def _signal_change(self) -> None:
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    async def _run_jobs(
        self, jobs: TaskGroup, outcomes: MemoryObjectSendStream[JobOutcome]
    ) -> None:
        """Start one slot task per unit of concurrency, feed them claimed jobs
        until the worker stops, then let the running jobs end."""
        claimed, to_run = anyio.create_memory_object_stream[RunningJob](
            self.options.concurrency
        )
        with to_run:
            for _ in range(self.options.concurrency):
                jobs.start_soon(self._slot, to_run.clone(), outcomes)
        async with claimed, anyio.create_task_group() as claimers:
            claimers.start_soon(self._supervise, self._second_claimer, None, claimed)
            await self._supervise(self._fetch_loop, None, claimed)
        await self._wait_running_jobs()

    async def _slot(
        self,
        to_run: MemoryObjectReceiveStream[RunningJob],
        outcomes: MemoryObjectSendStream[JobOutcome],
    ) -> None:
        """Run claimed jobs one at a time. Long-lived slots cost less than a
        task per job, and each job still has its own cancel scope."""
        async with to_run:
            async for running in to_run:
                await self._job_task(running, outcomes)

    async def _fetch_loop(self, claimed: MemoryObjectSendStream[RunningJob]) -> None:
        """The claimer: waits for free slots and for jobs (notification or
        polling), claims, hands the jobs to the slots."""
        options = self.options
        while not self._stop_requested:
            free = self._free_slots()
            # Claim in batches: while jobs run, wait until enough slots are
            # free for a batch worth a round trip (half a batch), rather than
            # claiming one job each time one ends.
            if free <= 0 or (self._running and free < self._refill_threshold):
                await self._wait_for_change()
                continue
            if not self._more_jobs_likely and options.wait:
                with anyio.move_on_after(await self._idle_timeout()):
                    await self._wakeup.wait()
                self._wakeup = anyio.Event()
                if self.statistics().stopping:  # stop() may have run meanwhile
                    break
                free = self._free_slots()
                if free <= 0:
                    continue
            fetched = await self._claim(claimed, min(free, options.fetch_batch_size))
            if fetched is None or fetched or options.wait:
                continue
            # One-shot: a retry not written yet would bring a job back.
            if not self._running and not self._unwritten:
                logger.info(
                    "No job left, stopping (one-shot)",
                    extra={"action": "worker_no_job_left"},
                )
                break
            await self._wait_for_change()
        self._fetching = False
        self._signal_change()

    async def _second_claimer(
        self, claimed: MemoryObjectSendStream[RunningJob]
    ) -> None:
        """While claims come back full (a backlog), claim too, so that two
        claims are in flight: one round trip's wait overlaps the other's
        work. Idle otherwise: a notification causes one claim, not two."""
        while self._fetching and not self._stop_requested:
            free = self._free_slots()
            if not self._more_jobs_likely or free < self._refill_threshold:
                await self._wait_for_change()
                continue
            await self._claim(claimed, min(free, self.options.fetch_batch_size))

    def _free_slots(self) -> int:
        """Slots neither running a job nor promised to a claim in flight."""
        return self.options.concurrency - len(self._running) - self._reserved

    async def _claim(
        self, claimed: MemoryObjectSendStream[RunningJob], limit: int
    ) -> list[Job] | None:
        """Claim up to ``limit`` jobs and hand them to the slots; None after a
        database error (logged, then a backoff)."""
        assert self.worker_id is not None
        options = self.options
        self._reserved += limit
        try:
            fetched = await self.app.connector.job_fetch_many(
                FetchParams(
                    worker_id=self.worker_id, queues=options.queues, limit=limit
                )
            )
        except ConnectorException as exc:
            logger.warning(
                "Could not fetch jobs, retrying in %.2f s: %s",
                self._fetch_backoff,
                exc,
                extra={"action": "fetch_error", "worker": options.name},
            )
            await anyio.sleep(self._fetch_backoff)
            self._fetch_backoff = min(
                self._fetch_backoff * 2, FETCH_ERROR_BACKOFF_MAX_SECONDS
            )
            return None
        finally:
            self._reserved -= limit
        self._fetch_backoff = FETCH_ERROR_BACKOFF_START_SECONDS
        self._last_fetch_at = time.time()
        full = len(fetched) == limit
        if full and not self._more_jobs_likely:
            self._signal_change()  # the second claimer may start
        self._more_jobs_likely = full
        for job in fetched:
            try:  # by name or alias, as run_job finds it
                timeout = self.app.get_task(job.task_name).timeout
            except TaskNotFound:
                timeout = None
            running = RunningJob(
                job=job,
                scope=anyio.CancelScope(
                    deadline=anyio.current_time() + timeout if timeout else float("inf")
                ),
                abort_signal=AbortSignal(
                    time.monotonic() + timeout if timeout else None
                ),
            )
            self._running[job.id] = running
            # Never blocks: there are no more claimed jobs than slots.
            claimed.send_nowait(running)
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

    async def _idle_timeout(self) -> float:
        """How long an idle fetcher waits for a notification: the polling
        interval, or less when a scheduled job is due sooner (so it starts on
        time without busy polling)."""
        interval = self.options.fetch_job_polling_interval
        try:
            due = await self.app.connector.job_next_scheduled_at(self.options.queues)
        except ConnectorException:
            return interval
        if due is None:
            return interval
        wait = (due - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
        return min(interval, max(wait, 0.0))

    async def _wait_running_jobs(self) -> None:
        """After fetching stopped: give running jobs the graceful timeout, then
        cancel them; return when they have all ended."""
        timeout = 0.0 if self._stop_now else self.options.shutdown_graceful_timeout
        if self._running:
            logger.info(
                "Waiting for %d running job(s)",
                len(self._running),
                extra={"action": "worker_wait_jobs", "worker": self.options.name},
            )
        with anyio.move_on_after(timeout):
            while self._running and not self._stop_now:
                await self._wait_for_change()
        for running in list(self._running.values()):
            running.stop(StopReason.SHUTDOWN)

    async def _job_task(
        self, running: RunningJob, send: MemoryObjectSendStream[JobOutcome]
    ) -> None:
        assert self._thread_limiter is not None
        outcome: JobOutcome | None = None
        try:
            outcome = await run_job(
                app=self.app,
                running=running,
                worker_name=self.options.name,
                worker_queues=self.options.queues,
                additional_context=self._additional_context,
                thread_limiter=self._thread_limiter,
            )
        finally:
            del self._running[running.job.id]
            self._job_ended()
            if self._stop_now:
                # A job that started after the stop-now decision was taken.
                for other in list(self._running.values()):
                    other.stop(StopReason.SHUTDOWN)
        delete = self.options.delete_jobs
        delete_job = outcome.status.is_final and (
            delete is DeleteJobs.ALWAYS
            or (delete is DeleteJobs.SUCCESSFUL and outcome.status is Status.SUCCEEDED)
        )
        outcome = attrs.evolve(outcome, worker_id=self.worker_id, delete_job=delete_job)
        self._unwritten += 1
        try:
            send.send_nowait(outcome)  # the common case: room in the buffer
        except anyio.WouldBlock:
            # Back-pressure: wait for the completer, even while cancelled.
            with anyio.CancelScope(shield=True):
                try:
                    await send.send(outcome)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    self._lost_outcome(running)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._lost_outcome(running)

    def _lost_outcome(self, running: RunningJob) -> None:
        self._unwritten -= 1
        logger.error(
            "Outcome of job %s lost: the completer stopped",
            running.job.id,
            extra={"action": "completer_lost", "jobs": [running.job.id]},
        )

    def _count_written(self, batch: Sequence[JobOutcome]) -> None:
        for outcome in batch:
            self._jobs_done[outcome.status.value] += 1
        self._unwritten -= len(batch)
        self._signal_change()  # a one-shot worker waits for the last outcomes
        if any(outcome.status is Status.TODO for outcome in batch):
            # A retry is due later: an idle fetcher must know when.
            self._wakeup.set()
