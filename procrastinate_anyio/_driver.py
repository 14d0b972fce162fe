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

from typing import TYPE_CHECKING, Literal, Protocol

import anyio
import attrs

from ._job import Status

if TYPE_CHECKING:
    import datetime
    from collections.abc import Callable, Sequence

    from anyio.abc import TaskStatus

    from ._job import Job, JobError, JobToDefer
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
    ``lock`` must be the job's lock when it was claimed: its end frees that
    lock, and the lock's next job becomes active.
    ``worker_id``, when given, must still own the job: an outcome of a worker
    whose job was recovered and claimed again elsewhere is ignored.
    """

    job_id: int
    status: Status
    lock: str | None = None
    worker_id: int | None = None
    result: JSONValue = None
    error: JobError | None = None
    retry_at: datetime.datetime | None = None
    retry_priority: int | None = None
    retry_queue: str | None = None
    retry_lock: str | None = None
    delete_job: bool = False


def without_queueing_lock_conflicts(
    outcomes: Sequence[JobOutcome], conflicting: set[int]
) -> list[JobOutcome]:
    """Turn the retries of ``conflicting`` jobs into failures.

    A job is retried by going back to ``todo``; when another job with its
    queueing lock already waits, the retry would break the "one waiting job
    per queueing lock" rule, and is redundant: the waiting job does the same
    work. The job fails instead, with its error.
    """
    if not conflicting:
        return list(outcomes)
    return [
        attrs.evolve(o, status=Status.FAILED, retry_at=None)
        if o.job_id in conflicting
        else o
        for o in outcomes
    ]


@attrs.frozen(kw_only=True)
class CancelParams:
    """Cancel a ``todo`` job; with ``abort``, also ask a ``doing`` job to stop;
    with ``delete_job``, delete a cancelled job instead of keeping it."""

    job_id: int
    abort: bool = False
    delete_job: bool = False


@attrs.frozen(kw_only=True)
class Notification:
    """What a listener hears: new jobs (``kind="defer"``, in ``queues``, or in
    unknown queues when None), an abort request (``kind="abort"`` for
    ``job_id``) or finished jobs (``kind="finished"``, ``job_ids``, or None
    when the list did not fit in the notification)."""

    kind: Literal["defer", "abort", "finished"]
    queues: tuple[str, ...] | None = None
    job_id: int | None = None
    job_ids: tuple[int, ...] | None = None


@attrs.frozen(kw_only=True)
class RetryParams:
    """Manually retry a finished job (failed, aborted or cancelled): back to
    ``todo`` at ``retry_at`` (None: at once), optionally elsewhere."""

    job_id: int
    retry_at: datetime.datetime | None = None
    priority: int | None = None
    queue: str | None = None
    lock: str | None = None


@attrs.frozen(kw_only=True)
class DeleteOldParams:
    """Delete jobs finished more than ``older_than`` ago, with one of
    ``statuses``, in ``queue`` (None: any)."""

    older_than: datetime.timedelta
    statuses: tuple[Status, ...]
    queue: str | None = None


@attrs.frozen(kw_only=True)
class GroupStats:
    """Job counts of one queue, task or lock (``list_queues`` and friends)."""

    name: str
    jobs_count: int
    todo: int = 0
    doing: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    aborted: int = 0


@attrs.frozen(kw_only=True)
class PeriodicDeferParams:
    """Defer ``job`` for one periodic tick, unless that tick was deferred;
    forget the ticks of the same periodic task older than ``keep_after``."""

    job: JobToDefer
    periodic_id: str
    defer_timestamp: int
    keep_after: int


@attrs.frozen(kw_only=True)
class MaintenanceParams:
    """One maintenance pass: workers silent for ``stalled_worker_timeout``
    seconds are dead; ``decide`` says where each of their doing jobs goes."""

    stalled_worker_timeout: float
    decide: Callable[[Job], JobOutcome]


@attrs.frozen(kw_only=True)
class MaintenanceResult:
    """What a maintenance pass did; ``leader`` False: another worker holds the
    maintenance lock, nothing was done."""

    leader: bool
    recovered: tuple[JobOutcome, ...] = ()
    pruned_workers: int = 0
    promoted_locks: int = 0


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

    async def job_delete_old(self, params: DeleteOldParams) -> int:
        """Delete old finished jobs; returns how many."""
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

    async def job_next_scheduled_at(
        self, queues: Sequence[str] | None
    ) -> datetime.datetime | None:
        """When the next future-scheduled ``todo`` job of ``queues`` is due."""
        ...

    async def job_wait_begin(self, job_id: int) -> int:
        """Ask for a ``finished`` notification when the job finishes; returns
        a waiter id for :meth:`job_wait_end`."""
        ...

    async def job_wait_end(self, waiter_id: int) -> None:
        """No more notifications for this waiter."""
        ...

    async def job_retry(self, params: RetryParams) -> bool:
        """Put a failed, aborted or cancelled job back to ``todo``. False when
        there is no such job or it is not in one of those statuses.

        Raises:
            AlreadyEnqueued: its queueing lock is taken by a waiting job.
        """
        ...

    async def job_stats(
        self, group_by: Literal["queue", "task", "lock"], filters: JobFilter
    ) -> list[GroupStats]:
        """Job counts by status, per queue, task or lock, for jobs matching
        ``filters`` (``limit`` applies to groups)."""
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

    async def maintenance_run(self, params: MaintenanceParams) -> MaintenanceResult:
        """If no other worker is doing it: recover the jobs of dead workers,
        delete dead workers' rows, let due scheduled jobs take their free
        lock."""
        ...

    async def periodic_defer(self, params: PeriodicDeferParams) -> int | None:
        """Defer a periodic tick's job once; None if it was deferred already.

        Raises:
            AlreadyEnqueued: the job's queueing lock is taken (the tick is
                not recorded).
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

    def job_retry(self, params: RetryParams) -> bool: ...

    def job_stats(
        self, group_by: Literal["queue", "task", "lock"], filters: JobFilter
    ) -> list[GroupStats]: ...

    def job_wait_finished(self, job_id: int, timeout: float | None) -> Job | None:
        """Block until the job is in a final status (or ``timeout``); returns
        it, or None when there is no such job. Woken by notifications."""
        ...

    def schema_applied_migrations(self) -> list[str] | None: ...

    def schema_apply(
        self, schema_sql: str, migrations: Sequence[tuple[str, str]]
    ) -> list[str]: ...
