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

from typing import TYPE_CHECKING, Any, Literal, Protocol

import anyio

if TYPE_CHECKING:
    import datetime
    from collections.abc import Callable, Sequence

    from anyio.abc import TaskStatus

    from .._job import Job, JobToDefer
    from ._types import (
        CancelParams,
        DeleteOldParams,
        FetchParams,
        GroupStats,
        JobFilter,
        JobOutcome,
        MaintenanceParams,
        MaintenanceResult,
        MoveParams,
        Notification,
        PausedQueue,
        PeriodicDeferParams,
        ProcrastinateMove,
        RetryParams,
        StalledJobs,
    )


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

    async def job_cancel(self, params: CancelParams, *, connection: Any = None) -> bool:
        """Cancel a ``todo`` job, or ask a ``doing`` one to abort.

        With ``connection`` (a connection of the caller's, as for
        :meth:`job_defer_many`), the change is made in its current
        transaction: it happens if and only if that transaction commits.

        Returns:
            True when this call cancelled (or deleted) the job or requested its
            abort; False when there is no such job, or it is finished, or it
            is running and ``abort`` is false.
        """
        ...

    async def job_delete_old(self, params: DeleteOldParams) -> int:
        """Delete old finished jobs; returns how many."""
        ...

    async def job_defer_many(
        self, jobs: Sequence[JobToDefer], *, connection: Any = None
    ) -> list[int]:
        """Write new jobs, all or none, and wake up listening workers.

        With ``connection`` (a connection of the caller's, of the kind the
        connector speaks), the jobs are written in its current transaction:
        they exist if and only if it commits (transactional defer).

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

    async def job_finish_many(self, outcomes: Sequence[JobOutcome]) -> list[int]:
        """Record the outcome of ``doing`` jobs; jobs no longer ``doing``, or
        no longer owned by the outcome's ``worker_id`` and ``started_at``
        (the attempt token), are left alone.

        Returns:
            The ids of the jobs whose outcome was refused that way, sorted.
        """
        ...

    async def job_get(self, job_id: int) -> Job | None:
        """One job by id, or None."""
        ...

    async def job_list(self, filters: JobFilter) -> list[Job]:
        """Jobs matching ``filters``, by id."""
        ...

    async def job_list_stalled(self, stalled_worker_timeout: float) -> StalledJobs:
        """The ``doing`` jobs whose worker has not heartbeaten for
        ``stalled_worker_timeout`` seconds (or whose worker row is gone),
        unless another worker is looking for them at the same time (one at
        a time across workers). Data only: the caller decides where they
        go, and finishes them guarded by the dead worker's id."""
        ...

    async def job_move_from_procrastinate(
        self, params: MoveParams
    ) -> ProcrastinateMove:
        """Move Procrastinate 3.x's waiting jobs (``todo``, scheduled or not)
        and deferred periodic ticks from its tables into ours, in one
        transaction, deleting the moved jobs from its table; with
        ``params.dry_run``, only report what would move.

        Raises:
            MoveRefused: Procrastinate's tables (or ours) are absent, or its
                workers heartbeated recently and ``params.force`` is false;
                nothing was written.
            AlreadyEnqueued: a queueing lock was taken meanwhile; nothing
                was written.
        """
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
        """If no other worker is doing it: delete dead workers' rows and
        vanished waiters, let due scheduled jobs take their free lock."""
        ...

    async def periodic_defer(self, params: PeriodicDeferParams) -> int | None:
        """Defer a periodic tick's job once; None if it was deferred already.

        Raises:
            AlreadyEnqueued: the job's queueing lock is taken (the tick is
                not recorded).
        """
        ...

    async def queue_list_paused(self) -> list[PausedQueue]:
        """The paused queues, by name (code point order)."""
        ...

    async def queue_pause(self, queue: str) -> bool:
        """Pause a queue: from their next claim on, workers take none of its
        jobs (running ones finish); deferring to it still works. False when
        it was paused already."""
        ...

    async def queue_resume(self, queue: str) -> bool:
        """Resume a paused queue and wake the workers listening to it. False
        when it was not paused."""
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

    def job_cancel(self, params: CancelParams, *, connection: Any = None) -> bool: ...

    def job_defer_many(
        self, jobs: Sequence[JobToDefer], *, connection: Any = None
    ) -> list[int]: ...

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

    def queue_list_paused(self) -> list[PausedQueue]: ...

    def queue_pause(self, queue: str) -> bool: ...

    def queue_resume(self, queue: str) -> bool: ...

    def schema_applied_migrations(self) -> list[str] | None: ...

    def schema_apply(
        self, schema_sql: str, migrations: Sequence[tuple[str, str]]
    ) -> list[str]: ...
