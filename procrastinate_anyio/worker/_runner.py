"""Run one job and turn what happened into a :class:`JobOutcome`.

Each job runs in a cancel scope of its slot task, a child of the worker's task
group: an abort, a timeout and a shutdown all cancel that scope, and
:class:`RunningJob` remembers which of them did, because the outcome differs
(aborted, failed with a timeout, back to todo or aborted). The slot task runs
job after job in one scope, and enters a new one after a job's stop: a scope
per job would cost 4.2 µs per job on Trio (1.7 on asyncio), and no other job
ever runs in a cancelled scope. Sync tasks run in a worker thread; a thread
cannot be cancelled, so they are told through :meth:`JobContext.should_abort`
and the job waits for them to return.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import attrs

from .. import _json
from .._clock import SYSTEM_CLOCK
from .._context import JobContext, StopReason
from .._exceptions import JobAborted, JobInterrupted, TaskNotFound
from .._hooks import JobRun
from .._job import Job, JobError, Status
from .._middleware import compose, is_async_middleware
from .._retry import retry_outcome
from ..connectors._types import JobOutcome
from ._backend import job_scope_factory
from ._options import DeleteJobs
from ._threads import SyncThreads

if TYPE_CHECKING:
    import datetime

    from anyio.streams.memory import MemoryObjectSendStream

    from .._clock import Clock
    from .._context import AppLike
    from .._task import Task
    from ._backend import JobScope
    from ._slots import RunningJob, Slots

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

logger = logging.getLogger("procrastinate_anyio.worker")

RunSync = Callable[[Callable[[], Any]], Awaitable[Any]]
"""Runs a sync call in a thread and waits for it, even cancelled."""


def error_from_exception(exc: BaseException) -> JobError:
    cls = type(exc)
    name = (
        cls.__qualname__
        if cls.__module__ == "builtins"
        else f"{cls.__module__}.{cls.__qualname__}"
    )
    # PostgreSQL text cannot hold NUL characters: show them escaped.
    return JobError(
        type=name,
        message=str(exc).replace("\x00", "\\x00"),
        traceback="".join(
            traceback.format_exception(cls, exc, exc.__traceback__)
        ).replace("\x00", "\\x00"),
    )


async def run_job(
    *,
    app: AppLike,
    running: RunningJob,
    scope: JobScope,
    worker_name: str,
    worker_queues: tuple[str, ...] | None,
    additional_context: Mapping[str, Any],
    run_sync: RunSync = anyio.to_thread.run_sync,
    clock: Clock = SYSTEM_CLOCK,
    middleware: WorkerMiddlewares | None = None,
    attempt: Attempt | None = None,
) -> JobOutcome:
    """Run ``running.job`` to the end and describe how it ended.

    Never raises for what the task does: task errors, timeouts, aborts and
    shutdown become outcomes. With ``attempt``, a success is already the
    outcome of that attempt (the common case, built once).

    Cancellation: the job runs in ``scope``, which the caller entered (a slot
    task's, for job after job). Aborts, timeouts and shutdown cancel that
    scope, and run_job turns the cancellation into the outcome; the caller
    leaves a cancelled scope before its next checkpoint. A cancellation from
    outside that scope propagates.
    """
    job = running.job
    if running.stop_reason is not None:
        # Stopped while it waited for a slot (claimed ahead): it never starts.
        if running.stop_reason is StopReason.SHUTDOWN:
            return released_outcome(job)
        return _aborted(job, _LazyExtra(job, worker_name))
    running.start(scope)
    try:
        task = app.get_task(job.task_name)
    except TaskNotFound as exc:
        running.end()
        logger.error(
            "Job %s: no task named %r",
            job.id,
            job.task_name,
            extra={"action": "task_not_found", "job": job.log_context()},
        )
        return JobOutcome(
            job_id=job.id,
            status=Status.FAILED,
            error=error_from_exception(exc),
            lock=job.lock,
        )

    args: tuple[JobContext, ...] = ()
    context: JobContext | None = None
    # Only then is the chain built: most jobs have no middleware.
    wrapped = bool(task.middleware) or (middleware is not None and middleware.active)
    if task.pass_context or wrapped:  # only then: most tasks need no context
        context = JobContext(
            app=app,
            worker_name=worker_name,
            worker_queues=worker_queues,
            job=job,
            start_timestamp=clock.now().timestamp(),
            additional_context=additional_context,
            abort_signal=running.abort_signal,
        )
        if task.pass_context:
            args = (context,)
    # Building the log context costs more than a no-op job: only when logged.
    log_extra = _LazyExtra(job, worker_name)
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "Starting job %s",
            job.call_string(),
            extra={"action": "start_job", **log_extra},
        )
    started = time.monotonic()
    result: Any = None
    error: Exception | None = None
    try:
        if context is not None and wrapped:
            result = await _invoke_wrapped(
                task, args, job, run_sync, context, middleware
            )
        else:
            result = await _invoke(task, args, job, run_sync)
    except Exception as exc:
        error = exc
    except BaseException as exc:
        # The scope's cancellation (this job's stop) ends the job, whatever
        # the task raised beside it: the stop's reason makes the outcome.
        # Any other cancellation propagates.
        _reraise_unless_stopped(exc, scope)
    finally:
        cancelled = running.end()
    duration = time.monotonic() - started

    reason = running.stop_reason
    if reason is None and (
        # Only the deadline cancels without a reason; a sync task may also
        # have seen it through should_abort() before the scope did.
        cancelled or running.abort_signal.reason is StopReason.TIMEOUT
    ):
        reason = StopReason.TIMEOUT
    if reason is StopReason.ABORT or (
        reason is None and isinstance(error, JobAborted)  # the task gave up
    ):
        return _aborted(job, log_extra)
    # A timeout or a shutdown interrupts the job even if it returned: a sync
    # task returns early when should_abort() says so, and its work is not done.
    if reason is StopReason.TIMEOUT:
        error = TimeoutError(f"Job exceeded its timeout of {task.timeout} s")
    elif reason is StopReason.SHUTDOWN:
        interrupted = JobInterrupted("The worker stopped while the job was running")
        outcome = _retry_outcome(
            task, job, interrupted, clock.now(), otherwise=Status.ABORTED
        )
        logger.warning(
            "Job %s interrupted by the worker's shutdown: %s",
            job.call_string(),
            outcome.status.value,
            extra={
                "action": "job_interrupted",
                "status": outcome.status.value,
                **log_extra,
            },
        )
        return outcome
    if error is not None:
        outcome = _retry_outcome(task, job, error, clock.now(), otherwise=Status.FAILED)
        _log_failure(job, outcome, error, duration, log_extra)
        return outcome
    try:
        if result is not None:  # the common case needs no check
            _json.dumps_value(result, getattr(app.connector, "json_dumps", None))
    # Not only TypeError and ValueError: a deep structure raises RecursionError,
    # a user's __iter__ or __str__ anything.
    except Exception as exc:
        message = (
            f"The return value of task {task.name!r} is not JSON-serialisable: {exc}"
        )
        logger.error(
            "Job %s: %s",
            job.call_string(),
            message,
            extra={"action": "job_result_not_serialisable", **log_extra},
        )
        return JobOutcome(
            job_id=job.id,
            status=Status.FAILED,
            lock=job.lock,
            error=JobError(type="TypeError", message=message),
        )
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            "Job %s succeeded in %.3f s",
            job.call_string(),
            duration,
            extra={"action": "job_success", "duration": duration, **log_extra},
        )
    if attempt is not None:
        return JobOutcome(
            job_id=job.id,
            status=Status.SUCCEEDED,
            result=result,
            lock=job.lock,
            worker_id=attempt.worker_id,
            started_at=job.started_at,
            delete_job=attempt.delete_succeeded,
        )
    return JobOutcome(
        job_id=job.id, status=Status.SUCCEEDED, result=result, lock=job.lock
    )


@attrs.frozen
class Attempt:
    """Whose attempt a job's run is, for its outcome: the worker, and whether
    a success deletes the job."""

    worker_id: int
    delete_succeeded: bool


def _reraise_unless_stopped(exc: BaseException, scope: JobScope) -> None:
    """Re-raise ``exc`` unless it is the cancellation of ``scope`` (the job's
    stop), alone or in a group (a task group inside the task), maybe beside
    errors of the task's: a cancellation from outside propagates, and so
    does a BaseException of the task's own (KeyboardInterrupt...)."""
    if scope.cancel_called:
        cancelled = anyio.get_cancelled_exc_class()
        if isinstance(exc, cancelled):
            return
        if isinstance(exc, BaseExceptionGroup):
            _, rest = exc.split(cancelled)
            if rest is None or isinstance(rest, Exception):
                return
    raise exc


def released_outcome(job: Job) -> JobOutcome:
    """A claimed job that never started goes back to ``todo`` as it was:
    no attempt counted, the same schedule and last error, its place on its
    lock kept."""
    return JobOutcome(
        job_id=job.id,
        status=Status.TODO,
        lock=job.lock,
        error=job.error,
        retry_at=job.scheduled_at,
        released=True,
    )


def _retry_outcome(
    task: Task[Any, Any],
    job: Job,
    exc: BaseException,
    now: datetime.datetime,
    *,
    otherwise: Status,
) -> JobOutcome:
    """:func:`retry_outcome`, except that a retry strategy that raises (user
    code) fails the job with both errors instead of stopping the worker."""
    error = error_from_exception(exc)
    try:
        return retry_outcome(
            job, exc, task.retry_strategy, now, otherwise=otherwise, error=error
        )
    except Exception as strategy_exc:
        logger.exception(
            "Job %s: the retry strategy of task %r raised; the job fails",
            job.id,
            task.name,
            extra={"action": "retry_strategy_error", "job": job.log_context()},
        )
        return JobOutcome(
            job_id=job.id,
            status=Status.FAILED,
            lock=job.lock,
            error=_strategy_error(error, strategy_exc),
        )


def _strategy_error(error: JobError, strategy_exc: Exception) -> JobError:
    """The job's error, completed with what its retry strategy raised."""
    raised = error_from_exception(strategy_exc)
    return JobError(
        type=error.type,
        message=(
            f"{error.message} (and the retry strategy raised "
            f"{raised.type}: {raised.message})"
        ),
        traceback=f"{error.traceback}\nThe retry strategy raised:\n{raised.traceback}",
    )


async def _invoke(
    task: Task[Any, Any],
    args: tuple[JobContext, ...],
    job: Job,
    run_sync: RunSync,
) -> Any:
    if task.is_async:
        return await task.func(*args, **job.task_kwargs)
    return await run_sync(functools.partial(task.func, *args, **job.task_kwargs))


@attrs.frozen
class WorkerMiddlewares:
    """A worker's middleware, split once by kind (see :mod:`.._middleware`)."""

    worker: tuple[Any, ...]
    sync_task: tuple[Any, ...]
    async_task: tuple[Any, ...]
    worker_object: Any
    active: bool  # any worker-level middleware at all

    @classmethod
    def make(
        cls,
        worker_middleware: Sequence[Any],
        task_middleware: Sequence[Any],
        worker_object: Any,
    ) -> WorkerMiddlewares:
        """Split by kind; ``worker_object`` is what middleware get as ``worker``."""
        return cls(
            tuple(worker_middleware),
            tuple(m for m in task_middleware if not is_async_middleware(m)),
            tuple(m for m in task_middleware if is_async_middleware(m)),
            worker_object,
            bool(worker_middleware or task_middleware),
        )


async def _invoke_wrapped(
    task: Task[Any, Any],
    args: tuple[JobContext, ...],
    job: Job,
    run_sync: RunSync,
    context: JobContext,
    middleware: WorkerMiddlewares | None,
) -> Any:
    """Like :func:`_invoke`, inside the middleware chain: worker middleware,
    the worker's task middleware of the task's kind, the task's own."""
    worker_mw: tuple[Any, ...] = ()
    worker_task_mw: tuple[Any, ...] = ()
    worker_object = None
    if middleware is not None:
        worker_mw = middleware.worker
        worker_task_mw = (
            middleware.async_task if task.is_async else middleware.sync_task
        )
        worker_object = middleware.worker_object
    task_mw = (*worker_task_mw, *task.middleware)
    call = functools.partial(task.func, *args, **job.task_kwargs)
    if task.is_async:
        innermost = compose(task_mw, call, context, worker_object)
    else:
        in_thread = compose(task_mw, call, context, worker_object)

        async def innermost() -> Any:
            return await run_sync(in_thread)

    return await compose(worker_mw, innermost, context, worker_object)()


class _LazyExtra(Mapping[str, Any]):
    """The job's log context, built on first use (``**log_extra`` in a log
    call that actually logs)."""

    def __init__(self, job: Job, worker_name: str) -> None:
        self._job = job
        self._worker_name = worker_name
        self._data: dict[str, Any] | None = None

    def _get(self) -> dict[str, Any]:
        if self._data is None:
            self._data = {"job": self._job.log_context(), "worker": self._worker_name}
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


def _aborted(job: Job, log_extra: Mapping[str, Any]) -> JobOutcome:
    logger.info(
        "Job %s aborted",
        job.call_string(),
        extra={"action": "job_aborted", **log_extra},
    )
    return JobOutcome(job_id=job.id, status=Status.ABORTED, lock=job.lock)


def _log_failure(
    job: Job,
    outcome: JobOutcome,
    exc: BaseException,
    duration: float,
    log_extra: Mapping[str, Any],
) -> None:
    retrying = outcome.status is Status.TODO
    logger.log(
        logging.WARNING if retrying else logging.ERROR,
        "Job %s %s after %.3f s: %s: %s",
        job.call_string(),
        "will be retried" if retrying else "failed",
        duration,
        type(exc).__name__,
        exc,
        exc_info=exc if not retrying else None,
        extra={
            "action": "job_error_retry" if retrying else "job_error",
            "duration": duration,
            "retry_at": outcome.retry_at.isoformat() if outcome.retry_at else None,
            **log_extra,
        },
    )


class SlotRunner:
    """Runs claimed jobs in long-lived slot tasks (one per unit of
    concurrency: cheaper than a task per job, and a stop still cancels only
    its own job), and sends each outcome to the completer.

    Args:
        app: finds the tasks; the jobs' ``JobContext.app``.
        slots: the running-job table; a job's slot is freed when it ends.
        worker_name, worker_queues, worker_id: the running worker.
        additional_context: read-only, shared by the jobs.
        delete_jobs: which finished jobs the completer deletes.
        clock: the time of day.
        middleware: the worker's middleware (None: none).
    """

    def __init__(
        self,
        app: AppLike,
        slots: Slots,
        *,
        worker_name: str,
        worker_queues: tuple[str, ...] | None,
        worker_id: int,
        additional_context: Mapping[str, Any],
        delete_jobs: DeleteJobs,
        clock: Clock,
        middleware: WorkerMiddlewares | None = None,
    ) -> None:
        self._app = app
        self._middleware = middleware
        self._slots = slots
        self._worker_name = worker_name
        self._worker_queues = worker_queues
        self._worker_id = worker_id
        self._additional_context = additional_context
        self._delete_jobs = delete_jobs
        self._attempt = Attempt(
            worker_id=worker_id,
            delete_succeeded=delete_jobs in (DeleteJobs.ALWAYS, DeleteJobs.SUCCESSFUL),
        )
        self._clock = clock
        self._threads = SyncThreads()
        self._run_hooks = tuple(app._hooks.run)
        self.outcomes_sent = 0
        """Outcomes sent to the completer (a one-shot worker compares it with
        those written)."""

    async def run_slot(self, outcomes: MemoryObjectSendStream[JobOutcome]) -> None:
        """Run the claimed jobs one at a time, until the slots close; sync
        tasks in the slot's own thread.

        The jobs run in one cancel scope, until a job's stop (or timeout)
        cancels it; the next job then gets a new one.
        """
        next_job = self._slots.next_job
        new_scope = job_scope_factory()
        thread = self._threads.slot_thread()
        try:
            while True:
                scope = new_scope()
                with scope:
                    while True:
                        running = await next_job()
                        if running is None:
                            return
                        await self._run_one(running, outcomes, thread.run_sync, scope)
                        # (its end, if the job failed before it)
                        if running.end():
                            break  # cancelled: a new scope for the next job
        finally:
            thread.close()

    async def _run_one(
        self,
        running: RunningJob,
        outcomes: MemoryObjectSendStream[JobOutcome],
        run_sync: RunSync,
        scope: JobScope,
    ) -> None:
        started = time.monotonic()
        try:
            # A job stopped while it waited for its slot never starts: no run
            # for the hooks to see.
            if self._run_hooks and running.stop_reason is None:
                outcome = await self._run_hooked(running, run_sync, scope)
            else:  # the common case
                outcome = await self._run_job(running, run_sync, scope)
        except Exception as exc:
            # run_job turns what the task does into an outcome; this is the
            # net for user code around it (a context hook, an object whose
            # methods raise, a run hook): that one job fails, the worker
            # goes on. Free when nothing raises.
            outcome = _unexpected_failure(running, exc)
        finally:
            self._slots.remove(
                running.job.id,
                duration=time.monotonic() - started if running.started else None,
            )
        await self._send(running, outcome, outcomes)

    async def release(
        self, running: RunningJob, outcomes: MemoryObjectSendStream[JobOutcome]
    ) -> None:
        """Give back a job claimed ahead that no slot started (the worker
        stops): ``todo`` again at once, as it was."""
        self._slots.remove(running.job.id)
        await self._send(running, released_outcome(running.job), outcomes)

    def _run_job(
        self, running: RunningJob, run_sync: RunSync, scope: JobScope
    ) -> Coroutine[Any, Any, JobOutcome]:
        return run_job(
            app=self._app,
            running=running,
            scope=scope,
            worker_name=self._worker_name,
            worker_queues=self._worker_queues,
            additional_context=self._additional_context,
            run_sync=run_sync,
            clock=self._clock,
            middleware=self._middleware,
            attempt=self._attempt,
        )

    async def _run_hooked(
        self, running: RunningJob, run_sync: RunSync, scope: JobScope
    ) -> JobOutcome:
        """The run inside the app's run hooks (first outermost), which see
        the outcome at their exit, that of a failure outside the task too."""
        run = JobRun(job=running.job, worker_name=self._worker_name)
        with contextlib.ExitStack() as stack:
            for hook in self._run_hooks:
                stack.enter_context(hook(run))
            try:
                run.outcome = await self._run_job(running, run_sync, scope)
            except Exception as exc:
                run.outcome = _unexpected_failure(running, exc)
        return run.outcome

    async def _send(
        self,
        running: RunningJob,
        outcome: JobOutcome,
        outcomes: MemoryObjectSendStream[JobOutcome],
    ) -> None:
        if outcome.worker_id is None:  # not already of this attempt (a success)
            delete = self._delete_jobs
            delete_job = outcome.status.is_final and (
                delete is DeleteJobs.ALWAYS
                or (
                    delete is DeleteJobs.SUCCESSFUL
                    and outcome.status is Status.SUCCEEDED
                )
            )
            outcome = outcome.of_attempt(
                worker_id=self._worker_id,
                started_at=running.job.started_at,  # the attempt token
                delete_job=delete_job,
            )
        self.outcomes_sent += 1
        try:
            outcomes.send_nowait(outcome)  # the common case: room in the buffer
        except anyio.WouldBlock:
            # Back-pressure: wait for the completer, even while cancelled.
            with anyio.CancelScope(shield=True):
                try:
                    await outcomes.send(outcome)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    _lost_outcome(running)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            _lost_outcome(running)


def _unexpected_failure(running: RunningJob, exc: Exception) -> JobOutcome:
    job = running.job
    logger.exception(
        "Job %s failed outside its task: %s: %s",
        job.id,
        type(exc).__name__,
        exc,
        extra={"action": "job_unexpected_error", "job": job.log_context()},
    )
    return JobOutcome(
        job_id=job.id,
        status=Status.FAILED,
        lock=job.lock,
        error=error_from_exception(exc),
    )


def _lost_outcome(running: RunningJob) -> None:
    logger.error(
        "Outcome of job %s lost: the completer stopped",
        running.job.id,
        extra={"action": "completer_lost", "jobs": [running.job.id]},
    )
