"""What a task sees of the worker that runs it (``pass_context=True``)."""

from __future__ import annotations

import enum
import time
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from ._task import Task, TaskRegistry

if TYPE_CHECKING:
    import datetime
    from collections.abc import Mapping, Sequence

    from ._deferrer import JobDeferrer
    from ._hooks import Hooks
    from ._job import Job
    from ._job_manager import JobManager
    from ._limits import Limit
    from ._periodic import PeriodicTask
    from .connectors._protocols import AsyncConnector


class StopReason(str, enum.Enum):
    """Why a running job must stop."""

    ABORT = "abort"
    TIMEOUT = "timeout"
    SHUTDOWN = "shutdown"


class AppLike(TaskRegistry, Protocol):
    """What a job (``JobContext.app``) and the worker use of the
    :class:`~procrastinate_anyio.App` that runs them. A protocol, so that the
    worker does not depend on the App module (which depends on the worker)."""

    @property
    def connector(self) -> AsyncConnector: ...

    @property
    def job_manager(self) -> JobManager: ...

    @property
    def periodic_tasks(self) -> Sequence[PeriodicTask]: ...

    @property
    def periodic_defaults(self) -> Mapping[str, Any]: ...

    @property
    def _hooks(self) -> Hooks:
        """What integrations run around defers and jobs (see :mod:`._hooks`)."""
        ...

    def limits(self) -> tuple[Limit, ...]:
        """The global limits the worker's claims enforce."""
        ...

    def configure_task(
        self,
        name: str,
        *,
        allow_unknown: bool = True,
        lock: str | None = ...,
        queueing_lock: str | None = ...,
        task_kwargs: Mapping[str, Any] | None = None,
        schedule_at: datetime.datetime | None = None,
        schedule_in: Mapping[str, float] | datetime.timedelta | None = None,
        priority: int | None = None,
        queue: str | None = None,
        connection: Any = None,
    ) -> JobDeferrer:
        """Defer a job by task name (see :meth:`App.configure_task`)."""
        ...


class AbortSignal:
    """A flag, set when the job must stop (abort requested, timeout, or worker
    shutdown). Sync tasks poll it from their thread through
    ``context.should_abort()``: reading and setting a Python attribute is
    atomic, no lock is needed."""

    __slots__ = ("_deadline", "reason")

    def __init__(self) -> None:
        self._deadline: float | None = None  # set when a job with a timeout starts
        self.reason: StopReason | None = None

    def set(self, reason: StopReason) -> None:
        if self.reason is None:
            self.reason = reason

    def set_deadline(self, deadline_monotonic: float) -> None:
        """The job's timeout ends at ``deadline_monotonic``
        (:func:`time.monotonic`)."""
        self._deadline = deadline_monotonic

    def is_set(self) -> bool:
        if self.reason is not None:
            return True
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self.set(StopReason.TIMEOUT)
            return True
        return False


@attrs.frozen(kw_only=True)
class JobContext:
    """Passed first to a task declared with ``pass_context=True``.

    Attributes:
        app: the app the worker runs.
        worker_name: the running worker's name.
        worker_queues: the queues it listens to (None: all).
        job: the job being run.
        start_timestamp: when this attempt started (``time.time()``).
        additional_context: the worker's ``additional_context`` option.
    """

    app: AppLike
    worker_name: str
    worker_queues: Sequence[str] | None
    job: Job
    start_timestamp: float
    additional_context: Mapping[str, Any] = attrs.field(factory=dict)
    abort_signal: AbortSignal = attrs.field(factory=AbortSignal, repr=False)

    @property
    def task(self) -> Task[Any, Any]:
        """The task that runs the job."""
        return self.app.get_task(self.job.task_name)

    @property
    def queues_display(self) -> str:
        """The worker's queues as text for messages (``"queues a, b"``, or
        ``"all queues"``), as Procrastinate writes them."""
        if not self.worker_queues:
            return "all queues"
        return "queues " + ", ".join(self.worker_queues)

    def abort_reason(self) -> StopReason | None:
        """Why the job must stop (an abort request, its timeout, the worker's
        shutdown), or None while it may go on. Safe to call from any thread."""
        return self.abort_signal.reason if self.abort_signal.is_set() else None

    def should_abort(self) -> bool:
        """True once the job should stop: an abort was requested, its timeout
        passed, or the worker is shutting down. Sync tasks should check it
        regularly and return (or raise) when it is True; async tasks are
        cancelled instead. Safe to call from any thread."""
        return self.abort_signal.is_set()
