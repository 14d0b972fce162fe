"""The worker: one AnyIO task group that fetches jobs and runs them.

Its tree (each piece in a module of its own)::

    Worker.run                     (shielded from the caller's cancellation, see below)
    ├── completer                  writes outcomes in batches; ends after the last job
    ├── written-batch counter      counts what the completer reports as written
    ├── services (one cancel scope)
    │   ├── listener               LISTEN/NOTIFY, reconnects with backoff
    │   ├── notification router    new jobs wake the fetcher; aborts stop jobs
    │   ├── heartbeat              keeps the worker row alive
    │   ├── abort poller           polls abort requests (NOTIFY is the fast path)
    │   ├── rescuer                recovers dead workers' jobs (one worker at a time)
    │   └── periodic deferrer      defers cron ticks, once per tick across workers
    ├── signals                    SIGINT/SIGTERM: first = graceful, second = now
    └── jobs (task group)
        ├── fetcher                two claimers: claim up to the free slots
        └── one slot task per unit of concurrency, running claimed jobs one
            at a time in a cancel scope that only the running job's stop
            (abort, timeout) cancels; the next job gets a new one

The pieces talk through memory streams (claimed jobs to the slots, outcomes
to the completer, written batches back, notifications to the router) and the
slots' change events; this class holds the tree, the stop, the statistics and
the supervision.

Every service is supervised: an unexpected error stops the worker (jobs are
cancelled, outcomes flushed, the worker unregistered) and is then raised to
the caller. Database errors are expected and retried with backoff.

Cancellation of the caller's scope (an ASGI lifespan ending, ``tg.cancel_scope
.cancel()``) or of the caller's asyncio task (``task.cancel()``) means a
graceful stop: the tree runs under a shield in a task of its own, and a guard
task outside it turns the cancellation into :meth:`Worker.stop`. The shutdown
is bounded by ``shutdown_graceful_timeout`` and the final flush by
``FINAL_FLUSH_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import functools
import logging
import math
import sys
import threading
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.from_thread
import anyio.lowlevel
import attrs
from anyio.abc import TaskStatus

from .._clock import SYSTEM_CLOCK
from .._context import StopReason
from .._exceptions import ConnectorException
from .._job import Status
from ..connectors._types import JobOutcome, Notification
from ._backend import backend_name
from ._completer import Completer
from ._fetcher import Fetcher
from ._listener import listen
from ._options import WorkerOptions
from ._runner import SlotRunner, WorkerMiddlewares
from ._services import count_written, make_services, route_notifications
from ._signals import handle_signals
from ._slots import Slots

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from anyio.abc import TaskGroup
    from anyio.streams.memory import MemoryObjectSendStream

    from .._clock import Clock
    from .._context import AppLike
    from .._notifications import NotificationHub
    from ..connectors._protocols import AsyncConnector

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

logger = logging.getLogger("procrastinate_anyio.worker")

FINAL_FLUSH_TIMEOUT_SECONDS: Final = 10.0
UNREGISTER_TIMEOUT_SECONDS: Final = 5.0
NOTIFICATION_BUFFER: Final = 1000


class _TrackedStatus(TaskStatus[None]):
    """Forwards ``started()`` (with ``value``) and remembers whether it was
    called."""

    def __init__(self, inner: TaskStatus[Any], value: object = None) -> None:
        self._inner = inner
        self._value = value
        self.called = False

    def started(self, value: object = None) -> None:
        self.called = True
        self._inner.started(self._value)


@attrs.frozen(kw_only=True)
class WorkerStatistics:
    """A snapshot of a worker (``worker.statistics()``)."""

    worker_id: int | None
    name: str
    running_jobs: int
    waiting_jobs: int
    """Jobs claimed ahead, waiting for a slot."""
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
        clock: the time of day (tests inject one).
        **options: the fields of :class:`WorkerOptions`.
    """

    def __init__(
        self, app: AppLike, *, clock: Clock = SYSTEM_CLOCK, **options: Any
    ) -> None:
        self.app = app
        self.options = WorkerOptions(**options)
        self.worker_id: int | None = None
        self._clock = clock
        settings = self.options
        self._slots = Slots(
            settings.concurrency,
            refill_threshold=max(
                1, min(settings.fetch_batch_size, settings.concurrency) // 2
            ),
            # A crash brings back the jobs claimed ahead as if they had run:
            # not when the first crash fails a job.
            prefetch=settings.prefetch if settings.max_crash_recoveries else 0,
            fetch_batch_size=settings.fetch_batch_size,
        )
        self._fetcher: Fetcher | None = None
        self._hub: NotificationHub | None = None
        self._stop_requested = False
        self._stop_now = False
        self._errors: list[BaseException] = []
        self._jobs_done: dict[str, int] = {status.value: 0 for status in Status}
        self._ran = False
        self._loop_thread: int | None = None
        self._loop_token: anyio.lowlevel.EventLoopToken | None = None

    def __repr__(self) -> str:
        return f"Worker({self.options.name!r}, id={self.worker_id})"

    # -- control ---------------------------------------------------------------

    def stop(self, *, now: bool = False) -> None:
        """Ask the worker to stop: no new job starts; running jobs get
        ``shutdown_graceful_timeout`` to finish (``now``: they are cancelled at
        once). Safe to call more than once, from the worker's event loop or
        from any other thread (a sync task's, say)."""
        if self._loop_thread not in (None, threading.get_ident()):
            # Events and cancel scopes belong to the loop: hop there.
            anyio.from_thread.run_sync(
                functools.partial(self.stop, now=now), token=self._loop_token
            )
            return
        if not self._stop_requested:
            logger.info(
                "Stop requested%s",
                " (now)" if now else "",
                extra={"action": "worker_stop_requested", "worker": self.options.name},
            )
        self._stop_requested = True
        self._stop_now = self._stop_now or now
        if self._fetcher is not None:
            self._fetcher.stop()
        self._slots.wake_on_every_end()
        if now:
            self._slots.stop_all(StopReason.SHUTDOWN)

    def statistics(self) -> WorkerStatistics:
        slots = self._slots.statistics()
        return WorkerStatistics(
            worker_id=self.worker_id,
            name=self.options.name,
            running_jobs=slots.running,
            waiting_jobs=slots.waiting,
            free_slots=slots.total - slots.running,
            jobs_done=dict(self._jobs_done),
            last_fetch_at=None
            if self._fetcher is None
            else self._fetcher.last_fetch_at,
            listening=self._hub is not None and self._hub.listening,
            stopping=self._stop_requested,
        )

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
        self._loop_thread = threading.get_ident()
        self._loop_token = anyio.lowlevel.current_token()
        # Outside the task group below, so that a registration error reaches
        # the caller as is, not inside an exception group.
        with anyio.CancelScope(shield=True):
            worker_id = await self.app.connector.worker_register(
                self.options.name, self.options.queues
            )
        self.worker_id = worker_id
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
                await tg.start(
                    functools.partial(
                        handle_signals,
                        signals,
                        stop=lambda now: self.stop(now=now),
                        stopping=lambda: self._stop_requested,
                        worker_name=self.options.name,
                    )
                )
            # The tree runs in a task of its own, not in the caller's: a
            # native asyncio cancel (``task.cancel()``) lands on the caller's
            # task whatever AnyIO shields, and here it only reaches the guard,
            # which turns it into a graceful stop like any other cancel.
            if await tg.start(self._run_tree, worker_id, finished, signals):
                task_status.started(self)
        if self._errors:
            raise BaseExceptionGroup("the worker stopped on error", self._errors)

    async def _run_tree(
        self,
        worker_id: int,
        finished: anyio.Event,
        signals: anyio.CancelScope,
        *,
        task_status: TaskStatus[bool] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """The worker's tree, shielded. ``task_status.started(True)`` once it
        is ready; ``started(False)`` if it ended before."""
        ready = _TrackedStatus(task_status, True)
        with anyio.CancelScope(shield=True):
            try:
                await self._run(worker_id, ready)
            finally:
                finished.set()
                signals.cancel()
                if not ready.called:
                    task_status.started(False)

    async def _run(self, worker_id: int, task_status: TaskStatus[None]) -> None:
        options = self.options
        connector = self.app.connector
        log_extra = {"worker": options.name, "worker_id": worker_id}
        backend = backend_name()
        logger.info(
            "Worker %s started: queues %s, concurrency %d, on %s",
            options.name,
            ", ".join(options.queues) if options.queues else "all",
            options.concurrency,
            backend,
            extra={
                "action": "worker_start",
                "queues": options.queues,
                "concurrency": options.concurrency,
                "backend": backend,
                **log_extra,
            },
        )
        outcomes, to_complete = anyio.create_memory_object_stream[JobOutcome](
            options.completer_buffer_size
        )
        written, to_count = anyio.create_memory_object_stream[Sequence[JobOutcome]](
            math.inf
        )
        completer = Completer(
            connector,
            to_complete,
            batch_size=options.completer_batch_size,
            flush_interval=options.completer_flush_interval,
            written=written,
        )
        limits = self.app.limits()
        if limits:
            # A job claimed ahead would hold a place under a limit while it
            # waits for a slot.
            self._slots.prefetch = 0
        self._fetcher = fetcher = Fetcher(
            connector,
            self.app,
            self._slots,
            options,
            worker_id=worker_id,
            clock=self._clock,
            # Sent but not reported written: an outcome handed to a waiting
            # completer is in neither its buffer nor its batch for a moment.
            outcomes_pending=lambda: (
                runner.outcomes_sent > sum(self._jobs_done.values())
                or not completer.statistics().idle
            ),
            limits=limits,
        )
        if self._stop_requested:  # stop() before the fetcher existed
            fetcher.stop()
        runner = SlotRunner(
            self.app,
            self._slots,
            worker_name=options.name,
            worker_queues=options.queues,
            worker_id=worker_id,
            # Read-only and shared by the jobs: a task cannot change the next one's.
            additional_context=types.MappingProxyType(dict(options.additional_context)),
            delete_jobs=options.delete_jobs,
            clock=self._clock,
            middleware=WorkerMiddlewares.make(
                options.worker_middleware, options.task_middleware, self
            ),
        )
        try:
            async with anyio.create_task_group() as tg:
                completer_scope = anyio.CancelScope()
                tg.start_soon(self._supervise, completer.run, completer_scope)
                tg.start_soon(
                    self._supervise,
                    count_written,
                    None,
                    to_count,
                    self._jobs_done,
                    self._slots,
                    fetcher,
                )
                services_scope = anyio.CancelScope()
                await tg.start(self._run_services, services_scope, worker_id, fetcher)
                task_status.started()
                try:
                    async with outcomes, anyio.create_task_group() as jobs:
                        await self._run_jobs(jobs, fetcher, runner, outcomes)
                finally:
                    services_scope.cancel()
                    completer_scope.deadline = (
                        anyio.current_time() + FINAL_FLUSH_TIMEOUT_SECONDS
                    )
            completer.report_unwritten(log_extra)
        finally:
            await _unregister(connector, worker_id, log_extra, self._jobs_done)

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

    async def _run_services(
        self,
        scope: anyio.CancelScope,
        worker_id: int,
        fetcher: Fetcher,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        options = self.options
        services = make_services(
            self.app, self._slots, options, worker_id=worker_id, clock=self._clock
        )
        with scope:
            async with anyio.create_task_group() as tg:
                for service in services:
                    tg.start_soon(self._supervise, service, None)
                for hook_service in self.app._hooks.worker_services:
                    tg.start_soon(self._supervise, hook_service, None, self.app)
                if options.listen_notify:
                    heard, to_route = anyio.create_memory_object_stream[Notification](
                        NOTIFICATION_BUFFER
                    )
                    self._hub = self.app.job_manager.notifications
                    tg.start_soon(
                        self._supervise,
                        route_notifications,
                        None,
                        to_route,
                        self._slots,
                        fetcher,
                        options.queues,
                    )
                    await tg.start(
                        self._supervise_started,
                        functools.partial(listen, self._hub, heard),
                    )
                task_status.started()

    async def _run_jobs(
        self,
        jobs: TaskGroup,
        fetcher: Fetcher,
        runner: SlotRunner,
        outcomes: MemoryObjectSendStream[JobOutcome],
    ) -> None:
        """Start the slot tasks, feed them claimed jobs until the worker
        stops, then let the running jobs end."""
        slots = self._slots
        for _ in range(slots.total):
            jobs.start_soon(runner.run_slot, outcomes)
        try:
            async with anyio.create_task_group() as claimers:
                claimers.start_soon(self._supervise, fetcher.run_second_claimer, None)
                await self._supervise(fetcher.run, None)
            # Jobs claimed ahead that no slot started go back at once.
            for waiting in slots.take_waiting():
                await runner.release(waiting, outcomes)
        finally:
            slots.close()
        await self._wait_running_jobs()

    async def _wait_running_jobs(self) -> None:
        """After fetching stopped: give running jobs the graceful timeout, then
        cancel them (the jobs' task group waits for them to end)."""
        if len(self._slots):
            logger.info(
                "Waiting for %d running job(s)",
                len(self._slots),
                extra={"action": "worker_wait_jobs", "worker": self.options.name},
            )
        timeout = 0.0 if self._stop_now else self.options.shutdown_graceful_timeout
        await self._slots.drain(timeout)


async def _unregister(
    connector: AsyncConnector,
    worker_id: int,
    log_extra: Mapping[str, Any],
    jobs_done: Mapping[str, int],
) -> None:
    """Remove the worker's row, bounded and shielded: the worker is stopping."""
    with anyio.move_on_after(UNREGISTER_TIMEOUT_SECONDS, shield=True):
        try:
            await connector.worker_unregister(worker_id)
        except ConnectorException as exc:
            logger.warning(
                "Could not unregister: %s",
                exc,
                extra={"action": "worker_unregister_error", **log_extra},
            )
    done = ", ".join(
        f"{count} {status}" for status, count in jobs_done.items() if count
    )
    logger.info(
        "Worker %s stopped: %s",
        log_extra["worker"],
        done or "no job run",
        extra={"action": "worker_stop", "jobs_done": dict(jobs_done), **log_extra},
    )
