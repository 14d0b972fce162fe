"""The driver seam: the job-level operations the rest of the library needs
from a storage backend.

Two protocols with the same operation names, one async
(:class:`AsyncConnector`) and one sync (:class:`SyncConnector`). Implementations: PostgreSQL on psycopg
(:class:`~procrastinate_anyio.PsycopgConnector`, async, and
:class:`~procrastinate_anyio.SyncPsycopgConnector`, sync) and
:class:`~procrastinate_anyio.InMemoryConnector` (both). One conformance suite
(``tests/driver/``) runs against every implementation, so the in-memory one is a
verified fake and not a guess.

Operations are named noun first (``job_defer_many``, ``worker_heartbeat``) and
sorted; an operation with more than three arguments takes one frozen params
object. The shape follows River's ``riverdriver`` interface.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal, Protocol

import anyio
import attrs

from ._job import Job, JobError, Status

if TYPE_CHECKING:
    from anyio.abc import TaskStatus

    from ._job import JobToDefer
    from ._json import JSONValue


@attrs.frozen(kw_only=True)
class JobFilter:
    """Which jobs :meth:`AsyncConnector.job_list` returns; None means "any"."""

    id: int | None = None
    queue: str | None = None
    task_name: str | None = None
    status: Status | None = None
    lock: str | None = None
    queueing_lock: str | None = None
    worker_id: int | None = None
    limit: int = 1000

    def __attrs_post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"limit must be at least 1, not {self.limit}")


@attrs.frozen(kw_only=True)
class FetchParams:
    """Claim up to ``limit`` ready jobs for ``worker_id``.

    ``queues`` None means every queue.
    """

    worker_id: int
    queues: Sequence[str] | None
    limit: int


@attrs.frozen(kw_only=True)
class JobOutcome:
    """How one attempt of a job ended, as the worker reports it.

    ``status`` is the final status, or ``TODO`` to retry the job at
    ``retry_at`` (None: at once) with the optional new priority, queue and lock.
    ``lock`` is the job's lock when it was claimed (its end frees the lock).
    """

    job_id: int
    status: Status
    lock: str | None = None
    result: JSONValue = None
    error: JobError | None = None
    retry_at: datetime.datetime | None = None
    retry_priority: int | None = None
    retry_queue: str | None = None
    retry_lock: str | None = None
    delete_job: bool = False


@attrs.frozen(kw_only=True)
class CancelParams:
    """Cancel a ``todo`` job; with ``abort``, also ask a ``doing`` job to stop;
    with ``delete_job``, delete a cancelled job instead of keeping it."""

    job_id: int
    abort: bool = False
    delete_job: bool = False


@attrs.frozen(kw_only=True)
class Notification:
    """What a listening worker hears: new jobs (``kind="defer"``, in
    ``queues``, or in unknown queues when None) or an abort request
    (``kind="abort"`` for ``job_id``)."""

    kind: Literal["defer", "abort"]
    queues: tuple[str, ...] | None = None
    job_id: int | None = None


class AsyncConnector(Protocol):
    """A storage backend for async code, on asyncio or Trio.

    Every operation may raise :class:`~procrastinate_anyio.ConnectorException`
    when the storage fails.
    """

    @property
    def is_open(self) -> bool: ...

    async def open_async(self) -> None:
        """Connect; raises ConnectorException when the database is unreachable."""
        ...

    async def close_async(self) -> None:
        """Release connections. Idempotent.

        Cancellation: shielded; always completes.
        """
        ...

    def get_sync_connector(self) -> SyncConnector:
        """The connector that ``app.open()`` and the sync API use."""
        ...

    async def job_cancel(self, params: CancelParams) -> bool:
        """Cancel a ``todo`` job, or ask a ``doing`` one to abort.

        Returns:
            True when this call cancelled (or deleted) the job or requested its
            abort; False when there is no such job, or it is finished, or it
            is running and ``abort`` is false.
        """
        ...

    async def job_defer_many(self, jobs: Sequence[JobToDefer]) -> list[int]:
        """Write new jobs, all or none, and wake up listening workers.

        Returns:
            the ids of the new jobs, in the order of ``jobs``.

        Raises:
            AlreadyEnqueued: a queueing lock is already held by a ``todo`` job
                (or twice in ``jobs``); nothing was written.
        """
        ...

    async def job_abort_requested_many(self, job_ids: Sequence[int]) -> list[int]:
        """Which of these jobs have an abort request."""
        ...

    async def job_fetch_many(self, params: FetchParams) -> list[Job]:
        """Claim up to ``params.limit`` ready jobs (move them to ``doing``),
        highest priority first, then oldest first."""
        ...

    async def job_finish_many(self, outcomes: Sequence[JobOutcome]) -> None:
        """Record the outcome of ``doing`` jobs; jobs no longer ``doing`` are
        left alone."""
        ...

    async def job_get(self, job_id: int) -> Job | None:
        """One job by id, or None."""
        ...

    async def job_list(self, filters: JobFilter) -> list[Job]:
        """Jobs matching ``filters``, by id."""
        ...

    async def listen(
        self,
        on_notification: Callable[[Notification], object],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen for notifications until cancelled, calling
        ``on_notification`` for each (in the listening task).

        Signals ``task_status.started()`` once listening: a job deferred
        after that is heard.

        Raises:
            ConnectorException: the connection failed or was lost.
        """
        ...

    async def schema_applied_migrations(self) -> list[str] | None:
        """Names of the applied migrations; None when there is no schema."""
        ...

    async def schema_apply(
        self, schema_sql: str, migrations: Sequence[tuple[str, str]]
    ) -> list[str]:
        """Create the schema, or apply the missing migrations.

        Returns:
            the names of the migrations applied by this call.
        """
        ...

    async def worker_heartbeat(self, worker_id: int) -> bool:
        """Refresh a worker's heartbeat. False if the worker row is gone."""
        ...

    async def worker_register(
        self, name: str, queues: Sequence[str] | None, worker_id: int | None = None
    ) -> int:
        """Add a worker row; returns its id. With ``worker_id``, re-create the
        row of a live worker whose row was pruned, under the same id."""
        ...

    async def worker_unregister(self, worker_id: int) -> None:
        """Remove a worker row."""
        ...


class SyncConnector(Protocol):
    """The sync twin of :class:`AsyncConnector`, for code without an event
    loop (scripts, Django views): defer, inspect, cancel, schema."""

    @property
    def is_open(self) -> bool: ...

    def open(self) -> None: ...

    def close(self) -> None: ...

    def job_cancel(self, params: CancelParams) -> bool: ...

    def job_defer_many(self, jobs: Sequence[JobToDefer]) -> list[int]: ...

    def job_get(self, job_id: int) -> Job | None: ...

    def job_list(self, filters: JobFilter) -> list[Job]: ...

    def schema_applied_migrations(self) -> list[str] | None: ...

    def schema_apply(
        self, schema_sql: str, migrations: Sequence[tuple[str, str]]
    ) -> list[str]: ...
