"""Job-level operations for the API, the worker, the CLI and the shell, async
and sync. A thin layer over the connector: validation lives in the callers,
SQL in the driver."""

from __future__ import annotations

import datetime
import logging
import threading
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from ._backoff import Backoff
from ._exceptions import AppNotOpen, ConnectorException, JobNotFound
from ._hooks import Hooks, deferring
from ._job import Job, JobToDefer, Status
from ._job_manager_porting import ProcrastinateJobManagerMixin
from ._notifications import NotificationHub
from ._validation import check_name, check_priority
from .connectors._types import (
    CancelParams,
    DeleteOldParams,
    GroupStats,
    JobFilter,
    Notification,
    PausedQueue,
    RetryParams,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from . import _json
    from .connectors._protocols import AsyncConnector, SyncConnector

T = TypeVar("T")

logger = logging.getLogger("procrastinate_anyio.job_manager")

WAIT_POLL_INTERVAL_SECONDS = 1.0
WAIT_RETRY_START_SECONDS = 0.05


class SyncConnectorSlot:
    """Holds the sync connector of the sync API: the one ``app.open()``
    opened, else (once the app's async connector is open: inside a worker,
    after ``open_async()``) one opened on first use, so that a sync task can
    defer jobs like any other code. That one is closed with the async
    connector (``app.close_async()``), or on first use after it closed."""

    def __init__(self, source: AsyncConnector | None = None) -> None:
        self.connector: SyncConnector | None = None
        self._source = source
        self._implicit: SyncConnector | None = None
        # Sync tasks run in several threads: one opens the connector.
        self._lock = threading.Lock()

    def get(self) -> SyncConnector:
        """The open sync connector.

        Raises:
            AppNotOpen: neither ``app.open()`` nor the async connector is open.
        """
        if self.connector is not None and self.connector.is_open:
            return self.connector
        if self.connector is None and self._source is not None:
            with self._lock:
                if self._source.is_open:
                    if self._implicit is None:
                        implicit = self._source.get_sync_connector()
                        implicit.open()
                        self._implicit = implicit
                    return self._implicit
                self._close_implicit_locked()
        raise AppNotOpen(
            "Sync calls need an open app: use `with app.open():` "
            "(or the *_async methods inside `async with app.open_async():`)"
        )

    @property
    def has_implicit(self) -> bool:
        """Whether a connector was opened on first use and is not closed."""
        return self._implicit is not None

    def close_implicit(self) -> None:
        """Close the connector opened on first use, if any."""
        with self._lock:
            self._close_implicit_locked()

    def _close_implicit_locked(self) -> None:
        implicit, self._implicit = self._implicit, None
        if implicit is not None:
            implicit.close()


class JobManager(ProcrastinateJobManagerMixin):
    """Reads and changes jobs. Reach it as ``app.job_manager``."""

    def __init__(
        self,
        connector: AsyncConnector,
        sync_slot: SyncConnectorSlot,
        hooks: Hooks | None = None,
    ) -> None:
        self.connector = connector
        self._sync_slot = sync_slot
        # The app's hooks (shared: hooks added later apply); see _hooks.py.
        self._hooks = Hooks() if hooks is None else hooks
        self.json_dumps: _json.Encoder | None = getattr(connector, "json_dumps", None)
        """The connector's ``json_dumps``, which job arguments go through."""
        self.notifications = NotificationHub(connector)
        """The app's one LISTEN connection, shared by its worker and waiters."""

    @property
    def sync_connector(self) -> SyncConnector:
        return self._sync_slot.get()

    async def defer_jobs_async(
        self, jobs: Sequence[JobToDefer], *, connection: Any = None
    ) -> list[int]:
        """Write jobs, all or none; returns their ids in order.

        Args:
            connection: a connection of the caller's, for the connector to
                write on (for PostgreSQL, a psycopg async connection: ours,
                :class:`~procrastinate_anyio.connectors.postgres.AnyioConnection`,
                or psycopg's own ``AsyncConnection`` on asyncio): the jobs are
                written in its current transaction, so they exist if and only
                if it commits (workers hear of them at commit). None: the
                connector's own connection.
        """
        if not self._hooks.defer:
            return await self.connector.job_defer_many(jobs, connection=connection)
        with deferring(self._hooks.defer, jobs) as call:
            call.job_ids = await self.connector.job_defer_many(
                call.jobs, connection=connection
            )
        return call.job_ids

    def defer_jobs(
        self, jobs: Sequence[JobToDefer], *, connection: Any = None
    ) -> list[int]:
        """The sync twin of :meth:`defer_jobs_async`; ``connection`` is a sync
        ``psycopg.Connection`` (Django's ``connection.connection``, for one),
        and needs no ``app.open()``."""
        if not self._hooks.defer:
            return self._defer_jobs(jobs, connection)
        with deferring(self._hooks.defer, jobs) as call:
            call.job_ids = self._defer_jobs(call.jobs, connection)
        return call.job_ids

    def _defer_jobs(self, jobs: Sequence[JobToDefer], connection: Any) -> list[int]:
        if connection is None:
            return self.sync_connector.job_defer_many(jobs)
        connector = self._sync_slot.connector or self.connector.get_sync_connector()
        return connector.job_defer_many(jobs, connection=connection)

    async def get_job_async(self, job_id: int) -> Job | None:
        """One job by id, or None."""
        return await self.connector.job_get(job_id)

    def get_job(self, job_id: int) -> Job | None:
        return self.sync_connector.job_get(job_id)

    async def list_jobs_async(
        self,
        *,
        id: int | None = None,  # the name Procrastinate users know
        queue: str | None = None,
        task: str | None = None,
        status: Status | str | None = None,
        lock: str | None = None,
        queueing_lock: str | None = None,
        worker_id: int | None = None,
        limit: int | None = None,
    ) -> list[Job]:
        """Jobs matching every given filter, oldest first; at most ``limit``
        when given (no limit by default, as in Procrastinate)."""
        return await self.connector.job_list(
            _filters(id, queue, task, status, lock, queueing_lock, worker_id, limit)
        )

    def list_jobs(
        self,
        *,
        id: int | None = None,  # the name Procrastinate users know
        queue: str | None = None,
        task: str | None = None,
        status: Status | str | None = None,
        lock: str | None = None,
        queueing_lock: str | None = None,
        worker_id: int | None = None,
        limit: int | None = None,
    ) -> list[Job]:
        return self.sync_connector.job_list(
            _filters(id, queue, task, status, lock, queueing_lock, worker_id, limit)
        )

    async def cancel_job_by_id_async(
        self,
        job_id: int,
        abort: bool = False,
        delete_job: bool = False,
        connection: Any = None,
    ) -> bool:
        """Cancel a ``todo`` job (or, with ``abort``, ask a ``doing`` job to stop).

        Args:
            job_id: the job.
            abort: also ask the job to stop when it is running.
            delete_job: delete a cancelled job instead of keeping it.
            connection: a connection of the caller's, as for
                :meth:`defer_jobs_async`: the cancel is part of its current
                transaction, so it happens if and only if that transaction
                commits (an abort request reaches the worker at commit).

        Returns:
            True when the job was cancelled (or deleted, with ``delete_job``)
            or its abort was requested; False when it was already finished,
            or running and ``abort`` was not given, or does not exist.
        """
        return await self.connector.job_cancel(
            CancelParams(job_id=job_id, abort=abort, delete_job=delete_job),
            connection=connection,
        )

    def cancel_job_by_id(
        self,
        job_id: int,
        abort: bool = False,
        delete_job: bool = False,
        connection: Any = None,
    ) -> bool:
        """The sync twin of :meth:`cancel_job_by_id_async`; ``connection`` is
        a sync ``psycopg.Connection`` (Django's ``connection.connection``, for
        one), and needs no ``app.open()``."""
        params = CancelParams(job_id=job_id, abort=abort, delete_job=delete_job)
        if connection is None:
            return self.sync_connector.job_cancel(params)
        connector = self._sync_slot.connector or self.connector.get_sync_connector()
        return connector.job_cancel(params, connection=connection)

    async def retry_job_by_id_async(
        self,
        job_id: int,
        *,
        retry_at: datetime.datetime | None = None,
        priority: int | None = None,
        queue: str | None = None,
        lock: str | None = None,
    ) -> None:
        """Put a failed, aborted or cancelled job back to ``todo`` (at
        ``retry_at``, an aware datetime; None: at once), optionally with
        another priority, queue or lock.

        Raises:
            JobNotFound: no such job, or it is not failed, aborted or cancelled.
            AlreadyEnqueued: its queueing lock is taken by a waiting job.
        """
        params = _retry_params(job_id, retry_at, priority, queue, lock)
        if not await self.connector.job_retry(params):
            raise JobNotFound(f"No failed, aborted or cancelled job with id {job_id}")

    def retry_job_by_id(
        self,
        job_id: int,
        *,
        retry_at: datetime.datetime | None = None,
        priority: int | None = None,
        queue: str | None = None,
        lock: str | None = None,
    ) -> None:
        """The sync twin of :meth:`retry_job_by_id_async`."""
        params = _retry_params(job_id, retry_at, priority, queue, lock)
        if not self.sync_connector.job_retry(params):
            raise JobNotFound(f"No failed, aborted or cancelled job with id {job_id}")

    async def list_queues_async(
        self,
        *,
        queue: str | None = None,
        task: str | None = None,
        status: Status | str | None = None,
        lock: str | None = None,
        limit: int | None = None,
    ) -> list[GroupStats]:
        """Job counts by status, per queue."""
        return await self.connector.job_stats(
            "queue", _filters(None, queue, task, status, lock, None, None, limit)
        )

    def list_queues(
        self,
        *,
        queue: str | None = None,
        task: str | None = None,
        status: Status | str | None = None,
        lock: str | None = None,
        limit: int | None = None,
    ) -> list[GroupStats]:
        return self.sync_connector.job_stats(
            "queue", _filters(None, queue, task, status, lock, None, None, limit)
        )

    async def list_tasks_async(
        self,
        *,
        queue: str | None = None,
        task: str | None = None,
        status: Status | str | None = None,
        lock: str | None = None,
        limit: int | None = None,
    ) -> list[GroupStats]:
        """Job counts by status, per task."""
        return await self.connector.job_stats(
            "task", _filters(None, queue, task, status, lock, None, None, limit)
        )

    def list_tasks(
        self,
        *,
        queue: str | None = None,
        task: str | None = None,
        status: Status | str | None = None,
        lock: str | None = None,
        limit: int | None = None,
    ) -> list[GroupStats]:
        return self.sync_connector.job_stats(
            "task", _filters(None, queue, task, status, lock, None, None, limit)
        )

    async def list_locks_async(
        self,
        *,
        queue: str | None = None,
        task: str | None = None,
        status: Status | str | None = None,
        lock: str | None = None,
        limit: int | None = None,
    ) -> list[GroupStats]:
        """Job counts by status, per lock (jobs without a lock are left out)."""
        return await self.connector.job_stats(
            "lock", _filters(None, queue, task, status, lock, None, None, limit)
        )

    def list_locks(
        self,
        *,
        queue: str | None = None,
        task: str | None = None,
        status: Status | str | None = None,
        lock: str | None = None,
        limit: int | None = None,
    ) -> list[GroupStats]:
        return self.sync_connector.job_stats(
            "lock", _filters(None, queue, task, status, lock, None, None, limit)
        )

    async def delete_old_jobs_async(
        self,
        *,
        max_hours: float,
        queue: str | None = None,
        include_failed: bool = False,
        include_cancelled: bool = False,
        include_aborted: bool = False,
    ) -> int:
        """Delete jobs that finished more than ``max_hours`` ago (succeeded
        ones, and the others when asked); returns how many."""
        statuses = [Status.SUCCEEDED]
        statuses += [Status.FAILED] if include_failed else []
        statuses += [Status.CANCELLED] if include_cancelled else []
        statuses += [Status.ABORTED] if include_aborted else []
        if max_hours < 0:
            raise ValueError(f"max_hours must be at least 0, not {max_hours}")
        return await self.connector.job_delete_old(
            DeleteOldParams(
                older_than=datetime.timedelta(hours=max_hours),
                statuses=tuple(statuses),
                queue=queue,
            )
        )

    async def pause_queue_async(self, queue: str) -> bool:
        """Pause ``queue``: workers start none of its jobs from their next
        claim on (within a claim; running jobs finish), on every machine;
        deferring to it still works. Returns False when it was paused already.

        Raises:
            ValueError, TypeError: not a valid queue name.
        """
        return await self.connector.queue_pause(check_name("queue", queue))

    def pause_queue(self, queue: str) -> bool:
        """The sync twin of :meth:`pause_queue_async`."""
        return self.sync_connector.queue_pause(check_name("queue", queue))

    async def resume_queue_async(self, queue: str) -> bool:
        """Resume a paused queue; listening workers are woken at once.
        Returns False when it was not paused."""
        return await self.connector.queue_resume(check_name("queue", queue))

    def resume_queue(self, queue: str) -> bool:
        """The sync twin of :meth:`resume_queue_async`."""
        return self.sync_connector.queue_resume(check_name("queue", queue))

    async def list_paused_queues_async(self) -> list[PausedQueue]:
        """The paused queues, by name."""
        return await self.connector.queue_list_paused()

    def list_paused_queues(self) -> list[PausedQueue]:
        """The sync twin of :meth:`list_paused_queues_async`."""
        return self.sync_connector.queue_list_paused()

    async def wait_for_job_async(
        self,
        job_id: int,
        *,
        timeout: float | None = None,  # noqa: ASYNC109  # mirrors the sync twin's API
    ) -> Job:
        """Wait until the job is finished (succeeded, failed, cancelled or
        aborted) and return it, with its ``result`` or ``error``.

        Woken by the notification that the worker's completer sends, heard on
        the app's one shared LISTEN connection (:attr:`notifications`: a
        worker of the app, or one of the waiters, holds it; any number of
        concurrent waiters share it); polls every second as a fallback.

        Raises:
            JobNotFound: no such job (or it was deleted).
            TimeoutError: ``timeout`` seconds passed first.

        Cancellation: the waiter's registration (in the database and in the
        hub) is removed, shielded.
        """
        finished = anyio.Event()

        def on_notification(notification: Notification) -> None:
            if notification.kind == "finished" and (
                notification.job_ids is None or job_id in notification.job_ids
            ):
                finished.set()

        job: Job | None = None
        error: Exception | None = None
        with (
            anyio.fail_after(timeout),
            self.notifications.subscribe(on_notification, on_listening=finished.set),
        ):
            async with anyio.create_task_group() as tg:
                # Hosts the hub if nobody does (and takes over when its host
                # leaves); otherwise just waits: one connection for all.
                await tg.start(self.notifications.run)
                try:
                    # Registered, the completer notifies when this job finishes.
                    waiter_id = await _retrying(self.connector.job_wait_begin, job_id)
                    try:
                        while True:
                            job = await _retrying(self.get_job_async, job_id)
                            if job is None or job.status.is_final:
                                break
                            with anyio.move_on_after(WAIT_POLL_INTERVAL_SECONDS):
                                await finished.wait()
                            finished = anyio.Event()
                    finally:
                        # Best effort: a row left behind is pruned after a day.
                        with anyio.move_on_after(5, shield=True):
                            await _retrying(self.connector.job_wait_end, waiter_id)
                except Exception as exc:
                    # Raised as is, not inside the task group's exception group.
                    error = exc
                tg.cancel_scope.cancel()
        if error is not None:
            raise error
        if job is None:
            raise JobNotFound(f"No job with id {job_id}")
        return job

    def wait_for_job(self, job_id: int, *, timeout: float | None = None) -> Job:
        """The sync twin of :meth:`wait_for_job_async`.

        Raises:
            JobNotFound: no such job (or it was deleted).
            TimeoutError: ``timeout`` seconds passed first.
        """
        job = self.sync_connector.job_wait_finished(job_id, timeout)
        if job is None:
            raise JobNotFound(f"No job with id {job_id}")
        if not job.status.is_final:
            raise TimeoutError(f"Job {job_id} did not finish within {timeout} s")
        return job


async def _retrying(operation: Callable[[int], Awaitable[T]], argument: int) -> T:
    """``operation(argument)``, again after a transient connector error (a
    pooled connection the server dropped): a wait outlives such errors, as the
    worker does. Other errors propagate."""
    backoff = Backoff(WAIT_RETRY_START_SECONDS, WAIT_POLL_INTERVAL_SECONDS)
    while True:
        try:
            return await operation(argument)
        except ConnectorException as exc:
            if not exc.transient:
                raise
            logger.warning(
                "A wait for job %s hit a connection error, retrying: %s",
                argument,
                exc,
                extra={"action": "wait_for_job_retry"},
            )
            await backoff.sleep()


def _retry_params(
    job_id: int,
    retry_at: datetime.datetime | None,
    priority: int | None,
    queue: str | None,
    lock: str | None,
) -> RetryParams:
    if retry_at is not None and retry_at.utcoffset() is None:
        raise ValueError("retry_at must be timezone-aware")
    if priority is not None:
        check_priority(priority)
    if queue is not None:
        check_name("queue", queue)
    return RetryParams(
        job_id=job_id, retry_at=retry_at, priority=priority, queue=queue, lock=lock
    )


def _filters(
    id: int | None,  # mirrors list_jobs
    queue: str | None,
    task: str | None,
    status: Status | str | None,
    lock: str | None,
    queueing_lock: str | None,
    worker_id: int | None,
    limit: int | None,
) -> JobFilter:
    return JobFilter(
        id=id,
        queue=queue,
        task_name=task,
        status=None if status is None else Status(status),
        lock=lock,
        queueing_lock=queueing_lock,
        worker_id=worker_id,
        limit=limit,
    )
