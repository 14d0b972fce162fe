"""An in-memory connector, for users' unit tests and ours.

:class:`~procrastinate_anyio.InMemoryConnector` (async) and
:class:`InMemorySyncConnector` (its sync view) are facades over one
:class:`~._store.InMemoryStore`. One deliberate difference from PostgreSQL:
it works without being opened first.
Every async method first yields to the event loop
(``anyio.lowlevel.checkpoint()``) so it honours cancellation like real I/O
(the shape of trio's ``MemoryListener`` and httpx's ``MockTransport``).
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.from_thread
import anyio.lowlevel

from .._clock import SYSTEM_CLOCK
from ._store import InMemoryStore

if TYPE_CHECKING:
    import datetime
    from collections.abc import Callable, Sequence

    from anyio.abc import TaskStatus

    from .._job import Job, JobToDefer
    from ..connectors._types import (
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


class InMemorySyncConnector:
    """The sync view of an :class:`~procrastinate_anyio.InMemoryConnector` (same jobs)."""

    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self) -> None:
        self._open = True

    def close(self) -> None:
        self._open = False

    def job_cancel(self, params: CancelParams, *, connection: Any = None) -> bool:
        """``connection`` is accepted and ignored (no transaction to join)."""
        return self.store.job_cancel(params)

    def job_defer_many(
        self, jobs: Sequence[JobToDefer], *, connection: Any = None
    ) -> list[int]:
        """``connection`` is accepted and ignored (no transaction to join)."""
        return self.store.job_defer_many(jobs)

    def job_get(self, job_id: int) -> Job | None:
        return self.store.job_get(job_id)

    def job_list(self, filters: JobFilter) -> list[Job]:
        return self.store.job_list(filters)

    def job_retry(self, params: RetryParams) -> bool:
        return self.store.job_retry(params)

    def job_stats(
        self, group_by: Literal["queue", "task", "lock"], filters: JobFilter
    ) -> list[GroupStats]:
        return self.store.job_stats(group_by, filters)

    def job_wait_finished(self, job_id: int, timeout: float | None) -> Job | None:
        return self.store.job_wait_finished(job_id, timeout)

    def queue_list_paused(self) -> list[PausedQueue]:
        return self.store.queue_list_paused()

    def queue_pause(self, queue: str) -> bool:
        return self.store.queue_pause(queue)

    def queue_resume(self, queue: str) -> bool:
        return self.store.queue_resume(queue)

    def schema_applied_migrations(self) -> list[str] | None:
        return self.store.schema_applied_migrations()

    def schema_apply(
        self, schema_sql: str, migrations: Sequence[tuple[str, str]]
    ) -> list[str]:
        return self.store.schema_apply(schema_sql, migrations)


class InMemoryConnector:
    """Keeps jobs in memory: for tests, no database needed.

    Args:
        clock: returns the current aware datetime; inject one to control
            scheduling in tests.

    Attributes:
        store: the jobs and workers, to inspect in tests (``store.rows``).
    """

    def __init__(
        self, *, clock: Callable[[], datetime.datetime] = SYSTEM_CLOCK.now
    ) -> None:
        self.store = InMemoryStore(clock)
        self._open = False

    def __repr__(self) -> str:
        return f"InMemoryConnector(jobs={len(self.store.rows)})"

    @property
    def is_open(self) -> bool:
        return self._open

    async def open_async(self) -> None:
        await anyio.lowlevel.checkpoint()
        self._open = True

    async def close_async(self) -> None:
        self._open = False

    def get_sync_connector(self) -> InMemorySyncConnector:
        return InMemorySyncConnector(self.store)

    def reset(self) -> None:
        """Forget every job and worker."""
        self.store.reset()

    @property
    def jobs(self) -> dict[int, dict[str, Any]]:
        """Every job by id, as a dict with the keys of a Procrastinate job
        row (``id``, ``queue_name``, ``task_name``, ``args``, ``status``...),
        for tests written against Procrastinate's in-memory connector."""
        return {
            job_id: _procrastinate_row(row.job)
            for job_id, row in sorted(self.store.rows.items())
        }

    async def job_cancel(self, params: CancelParams, *, connection: Any = None) -> bool:
        """``connection`` is accepted and ignored, as in :meth:`job_defer_many`."""
        await anyio.lowlevel.checkpoint()
        return self.store.job_cancel(params)

    async def job_defer_many(
        self, jobs: Sequence[JobToDefer], *, connection: Any = None
    ) -> list[int]:
        """``connection`` is accepted and ignored: memory has no transaction
        to join, the jobs are written at once."""
        await anyio.lowlevel.checkpoint()
        return self.store.job_defer_many(jobs)

    async def job_abort_requested_many(self, job_ids: Sequence[int]) -> list[int]:
        await anyio.lowlevel.checkpoint()
        return self.store.job_abort_requested_many(job_ids)

    async def job_fetch_many(self, params: FetchParams) -> list[Job]:
        await anyio.lowlevel.checkpoint()
        return self.store.job_fetch_many(params)

    async def job_finish_many(self, outcomes: Sequence[JobOutcome]) -> list[int]:
        await anyio.lowlevel.checkpoint()
        return self.store.job_finish_many(outcomes)

    async def job_delete_old(self, params: DeleteOldParams) -> int:
        await anyio.lowlevel.checkpoint()
        return self.store.job_delete_old(params)

    async def job_get(self, job_id: int) -> Job | None:
        await anyio.lowlevel.checkpoint()
        return self.store.job_get(job_id)

    async def job_list(self, filters: JobFilter) -> list[Job]:
        await anyio.lowlevel.checkpoint()
        return self.store.job_list(filters)

    async def job_move_from_procrastinate(
        self, params: MoveParams
    ) -> ProcrastinateMove:
        await anyio.lowlevel.checkpoint()
        return self.store.job_move_from_procrastinate(params)

    async def job_next_scheduled_at(
        self, queues: Sequence[str] | None
    ) -> datetime.datetime | None:
        await anyio.lowlevel.checkpoint()
        return self.store.job_next_scheduled_at(queues)

    async def job_wait_begin(self, job_id: int) -> int:
        # The in-memory store notifies every finish: nothing to register.
        await anyio.lowlevel.checkpoint()
        return 0

    async def job_wait_end(self, waiter_id: int) -> None:
        await anyio.lowlevel.checkpoint()

    async def job_retry(self, params: RetryParams) -> bool:
        await anyio.lowlevel.checkpoint()
        return self.store.job_retry(params)

    async def job_stats(
        self, group_by: Literal["queue", "task", "lock"], filters: JobFilter
    ) -> list[GroupStats]:
        await anyio.lowlevel.checkpoint()
        return self.store.job_stats(group_by, filters)

    async def job_list_stalled(self, stalled_worker_timeout: float) -> StalledJobs:
        await anyio.lowlevel.checkpoint()
        return self.store.job_list_stalled(stalled_worker_timeout)

    async def maintenance_run(self, params: MaintenanceParams) -> MaintenanceResult:
        await anyio.lowlevel.checkpoint()
        return self.store.maintenance_run(params)

    async def periodic_defer(self, params: PeriodicDeferParams) -> int | None:
        await anyio.lowlevel.checkpoint()
        return self.store.periodic_defer(params)

    async def listen(
        self,
        on_notification: Callable[[Notification], object],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        await anyio.lowlevel.checkpoint()
        loop_thread = threading.get_ident()
        loop_token = anyio.lowlevel.current_token()

        def deliver(notification: Notification) -> None:
            # The sync facade may write from a sync task's thread: listeners
            # set AnyIO events, which only the event loop's thread may do.
            if threading.get_ident() == loop_thread:
                on_notification(notification)
                return
            # The loop ended meanwhile: the notification is dropped.
            with contextlib.suppress(anyio.RunFinishedError):
                anyio.from_thread.run_sync(
                    on_notification, notification, token=loop_token
                )

        self.store.listeners.append(deliver)
        try:
            task_status.started()
            await anyio.sleep_forever()
        finally:
            self.store.listeners.remove(deliver)

    async def queue_list_paused(self) -> list[PausedQueue]:
        await anyio.lowlevel.checkpoint()
        return self.store.queue_list_paused()

    async def queue_pause(self, queue: str) -> bool:
        await anyio.lowlevel.checkpoint()
        return self.store.queue_pause(queue)

    async def queue_resume(self, queue: str) -> bool:
        await anyio.lowlevel.checkpoint()
        return self.store.queue_resume(queue)

    async def schema_applied_migrations(self) -> list[str] | None:
        await anyio.lowlevel.checkpoint()
        return self.store.schema_applied_migrations()

    async def schema_apply(
        self, schema_sql: str, migrations: Sequence[tuple[str, str]]
    ) -> list[str]:
        await anyio.lowlevel.checkpoint()
        return self.store.schema_apply(schema_sql, migrations)

    async def worker_heartbeat(self, worker_id: int) -> bool:
        await anyio.lowlevel.checkpoint()
        return self.store.worker_heartbeat(worker_id)

    async def worker_register(
        self, name: str, queues: Sequence[str] | None, worker_id: int | None = None
    ) -> int:
        await anyio.lowlevel.checkpoint()
        return self.store.worker_register(name, queues, worker_id)

    async def worker_unregister(self, worker_id: int) -> None:
        await anyio.lowlevel.checkpoint()
        self.store.worker_unregister(worker_id)


def _procrastinate_row(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "queue_name": job.queue,
        "task_name": job.task_name,
        "priority": job.priority,
        "lock": job.lock,
        "queueing_lock": job.queueing_lock,
        "args": dict(job.task_kwargs),
        "status": job.status.value,
        "scheduled_at": job.scheduled_at,
        "attempts": job.attempts,
        "abort_requested": job.abort_requested,
        "worker_id": job.worker_id,
    }
