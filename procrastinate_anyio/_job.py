"""Jobs as the library sees them: immutable records read from the driver."""

from __future__ import annotations

import enum
import types
from typing import TYPE_CHECKING, Any, Final

import attrs

if TYPE_CHECKING:
    import datetime
    from collections.abc import Mapping

    from ._json import JSONValue

NO_HEADERS: Final[Mapping[str, str]] = types.MappingProxyType({})
"""The headers of a job that has none: one shared empty mapping, so that the
common job allocates nothing for them."""


class Status(str, enum.Enum):
    """The status of a job. A job starts ``todo``, a worker moves it to ``doing``,
    and it ends in one of the four final statuses (or goes back to ``todo`` to be
    retried)."""

    TODO = "todo"
    DOING = "doing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ABORTED = "aborted"

    @property
    def is_final(self) -> bool:
        """True for the statuses a job never leaves on its own."""
        return self not in (Status.TODO, Status.DOING)


@attrs.frozen
class JobError:
    """Why a job failed: the exception's type, message and formatted traceback."""

    type: str
    message: str
    traceback: str | None = None


@attrs.frozen(kw_only=True)
class Job:
    """A job read from the database.

    Attributes:
        id: the job's id, unique in the database.
        queue: the queue it waits in.
        task_name: the name of the task that runs it.
        task_kwargs: the keyword arguments the task is called with.
        priority: higher runs first.
        lock: at most one job with a given lock runs at a time.
        queueing_lock: at most one job with a given queueing lock waits at a time.
        status: where the job is in its life.
        scheduled_at: not started before this time (None: as soon as possible).
        attempts: how many attempts ended (as in Procrastinate): 0 while the
            first one runs, 1 once it ended, retried or not.
        abort_requested: someone asked the running job to stop.
        worker_id: the worker that runs (or last ran) the job.
        created_at, started_at, finished_at: when the job was deferred, last
            started, and finished.
        result: the task's return value, once it succeeded.
        error: why the last attempt failed, if it did.
        recoveries: how many times the job's worker died while running it
            (each time, stalled-job recovery brought it back).
        headers: metadata that travels with the job, text keys and values,
            written when it was deferred and kept across its retries (the
            OpenTelemetry instrumentation carries the trace context in it);
            empty for most jobs. Read it, do not change it.
    """

    id: int
    queue: str
    task_name: str
    task_kwargs: Mapping[str, JSONValue] = attrs.field(factory=dict)
    priority: int = 0
    lock: str | None = None
    queueing_lock: str | None = None
    status: Status = Status.TODO
    scheduled_at: datetime.datetime | None = None
    attempts: int = 0
    abort_requested: bool = False
    worker_id: int | None = None
    created_at: datetime.datetime | None = None
    started_at: datetime.datetime | None = None
    finished_at: datetime.datetime | None = None
    result: JSONValue = None
    error: JobError | None = None
    recoveries: int = 0
    headers: Mapping[str, str] = NO_HEADERS

    def call_string(self) -> str:
        """A readable ``task_name[id](key=value, ...)`` for logs and the shell."""
        kwargs = ", ".join(f"{k}={v!r}" for k, v in self.task_kwargs.items())
        return f"{self.task_name}[{self.id}]({kwargs})"

    def log_context(self) -> dict[str, Any]:
        """The job's fields as plain values, for the ``extra`` of log records."""
        return {
            "id": self.id,
            "queue": self.queue,
            "task_name": self.task_name,
            "task_kwargs": dict(self.task_kwargs),
            "priority": self.priority,
            "lock": self.lock,
            "queueing_lock": self.queueing_lock,
            "status": self.status.value,
            "attempts": self.attempts,
            "call_string": self.call_string(),
        }


@attrs.frozen(kw_only=True)
class JobToDefer:
    """What the driver needs to write one new job. Built and validated by
    :class:`~procrastinate_anyio.Task`; drivers may trust it.

    ``args_json`` is the JSON text of the arguments, serialised once at the
    API boundary so that every driver stores exactly the same thing.
    ``headers`` (text keys and values) are stored with the job as they are;
    a defer hook adds them (see :mod:`._hooks`).
    """

    queue: str
    task_name: str
    args_json: str
    priority: int = 0
    lock: str | None = None
    queueing_lock: str | None = None
    scheduled_at: datetime.datetime | None = None
    headers: Mapping[str, str] = NO_HEADERS
