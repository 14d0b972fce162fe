"""Job-level operations for the API, the worker, the CLI and the shell, async
and sync. A thin layer over the connector: validation lives in the callers,
SQL in the driver."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._driver import CancelParams, JobFilter
from ._exceptions import AppNotOpen
from ._job import Job, JobToDefer, Status

if TYPE_CHECKING:
    from ._driver import AsyncConnector, SyncConnector


class SyncConnectorSlot:
    """Holds the sync connector that ``app.open()`` opened, for the sync API."""

    def __init__(self) -> None:
        self.connector: SyncConnector | None = None

    def get(self) -> SyncConnector:
        """The open sync connector.

        Raises:
            AppNotOpen: ``app.open()`` is not in effect.
        """
        if self.connector is None or not self.connector.is_open:
            raise AppNotOpen(
                "Sync calls need an open app: use `with app.open():` "
                "(or the *_async methods inside `async with app.open_async():`)"
            )
        return self.connector


class JobManager:
    """Reads and changes jobs. Reach it as ``app.job_manager``."""

    def __init__(self, connector: AsyncConnector, sync_slot: SyncConnectorSlot) -> None:
        self.connector = connector
        self._sync_slot = sync_slot

    @property
    def sync_connector(self) -> SyncConnector:
        return self._sync_slot.get()

    async def defer_jobs_async(self, jobs: Sequence[JobToDefer]) -> list[int]:
        """Write jobs, all or none; returns their ids in order."""
        return await self.connector.job_defer_many(jobs)

    def defer_jobs(self, jobs: Sequence[JobToDefer]) -> list[int]:
        return self.sync_connector.job_defer_many(jobs)

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
        limit: int = 1000,
    ) -> list[Job]:
        """Jobs matching every given filter, oldest first, at most ``limit``."""
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
        limit: int = 1000,
    ) -> list[Job]:
        return self.sync_connector.job_list(
            _filters(id, queue, task, status, lock, queueing_lock, worker_id, limit)
        )

    async def cancel_job_by_id_async(
        self, job_id: int, *, abort: bool = False, delete_job: bool = False
    ) -> bool:
        """Cancel a ``todo`` job (or, with ``abort``, ask a ``doing`` job to stop).

        Returns:
            True when the job was cancelled (or deleted, with ``delete_job``)
            or its abort was requested; False when it was already finished,
            or running and ``abort`` was not given, or does not exist.
        """
        return await self.connector.job_cancel(
            CancelParams(job_id=job_id, abort=abort, delete_job=delete_job)
        )

    def cancel_job_by_id(
        self, job_id: int, *, abort: bool = False, delete_job: bool = False
    ) -> bool:
        return self.sync_connector.job_cancel(
            CancelParams(job_id=job_id, abort=abort, delete_job=delete_job)
        )


def _filters(
    id: int | None,  # mirrors list_jobs
    queue: str | None,
    task: str | None,
    status: Status | str | None,
    lock: str | None,
    queueing_lock: str | None,
    worker_id: int | None,
    limit: int,
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
