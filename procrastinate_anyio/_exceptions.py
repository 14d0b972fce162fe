"""The exception hierarchy: everything the library raises on purpose derives
from :class:`ProcrastinateException`, so ``except ProcrastinateException``
catches every error that is ours and nothing that is not."""

from __future__ import annotations


class ProcrastinateException(Exception):
    """Base class of every exception raised by procrastinate_anyio."""


class AppNotOpen(ProcrastinateException):
    """An operation needed the database, but the app's connector is not open.

    Open it first with ``async with app.open_async():`` (async code) or
    ``with app.open():`` (sync code).
    """


class ConnectorException(ProcrastinateException):
    """The database could not be reached, or a statement failed unexpectedly.

    ``transient`` is True when trying again later may work (the connection
    failed or was lost), False when the statement itself was refused.
    """

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


class AlreadyEnqueued(ProcrastinateException):
    """A job with the same queueing lock is already waiting (status ``todo``).

    Nothing was written: in a batch defer, none of the jobs were.
    """

    def __init__(self, message: str, *, queueing_lock: str | None = None) -> None:
        super().__init__(message)
        self.queueing_lock = queueing_lock


class TaskNotFound(ProcrastinateException):
    """No task is registered under that name (or alias)."""


class TaskAlreadyRegistered(ProcrastinateException):
    """Two different tasks were registered under the same name or alias."""


class UnboundTaskError(ProcrastinateException):
    """A task of a :class:`~procrastinate_anyio.Blueprint` was used before the
    blueprint was added to an :class:`~procrastinate_anyio.App`."""


class InvalidJobArguments(ProcrastinateException, TypeError):
    """Job arguments that cannot be stored: not JSON-serialisable, positional,
    or not accepted by the task's signature."""


class JobNotFound(ProcrastinateException):
    """No job has that id."""


class JobStateError(ProcrastinateException):
    """The job is not in a status that allows the requested operation."""


class SchemaError(ProcrastinateException):
    """The database schema is missing, too new, or a migration failed."""


class MoveRefused(ProcrastinateException):
    """Moving Procrastinate's jobs was refused, and nothing was written: its
    tables (or ours) are missing, or its workers are still running."""


class LoadFromPathError(ProcrastinateException, ImportError):
    """A dotted path (``module.attribute``) could not be imported."""


class StalledJob(ProcrastinateException):
    """The worker running the job stopped heartbeating: shown to retry
    strategies when the job of a dead worker is brought back."""


class JobInterrupted(ProcrastinateException):
    """The worker stopped while the job was running: shown to retry
    strategies when a shutdown cancels a job."""


class JobAborted(ProcrastinateException):
    """Raised by a task to end its job as ``aborted`` (typically a sync task
    that saw ``context.should_abort()``), as in Procrastinate."""


class MiddlewareKindMismatch(ProcrastinateException, TypeError):
    """A middleware does not match what it wraps: an async one on a sync
    task (or the reverse), or a sync worker middleware."""
