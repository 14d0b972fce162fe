"""The job manager's methods under Procrastinate's names and signatures
(``get_job_status``, ``get_stalled_jobs``, ``retry_job``, ``delete_old_jobs``),
so that maintenance scripts written for Procrastinate run unchanged. A mixin
of :class:`~procrastinate_anyio.JobManager`: each method is a thin
translation to the job manager's own API."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

from ._exceptions import JobNotFound
from ._job import JobError, Status
from ._validation import check_name
from .connectors._types import JobOutcome, MoveParams

if TYPE_CHECKING:
    from ._job import Job
    from .connectors._protocols import AsyncConnector, SyncConnector
    from .connectors._types import ProcrastinateMove

DEFAULT_SECONDS_SINCE_HEARTBEAT = 30.0


class ProcrastinateJobManagerMixin:
    """Procrastinate's maintenance API (see the module docstring)."""

    connector: AsyncConnector

    if TYPE_CHECKING:

        @property
        def sync_connector(self) -> SyncConnector: ...

        async def get_job_async(self, job_id: int) -> Job | None: ...

        def get_job(self, job_id: int) -> Job | None: ...

        async def retry_job_by_id_async(
            self,
            job_id: int,
            *,
            retry_at: datetime.datetime | None = None,
            priority: int | None = None,
            queue: str | None = None,
            lock: str | None = None,
        ) -> None: ...

        async def delete_old_jobs_async(
            self,
            *,
            max_hours: float,
            queue: str | None = None,
            include_failed: bool = False,
            include_cancelled: bool = False,
            include_aborted: bool = False,
        ) -> int: ...

    async def get_job_status_async(self, job_id: int) -> Status:
        """The status of a job.

        Raises:
            JobNotFound: no such job.
        """
        return _status(job_id, await self.get_job_async(job_id))

    def get_job_status(self, job_id: int) -> Status:
        """The sync twin of :meth:`get_job_status_async`."""
        return _status(job_id, self.get_job(job_id))

    async def get_stalled_jobs(
        self,
        nb_seconds: float | None = None,
        queue: str | None = None,
        task_name: str | None = None,
        seconds_since_heartbeat: float = DEFAULT_SECONDS_SINCE_HEARTBEAT,
    ) -> list[Job]:
        """The ``doing`` jobs of workers silent for ``seconds_since_heartbeat``
        (or, with ``nb_seconds``, the jobs started longer ago than that,
        whatever their worker), optionally of one queue or task. Workers
        recover such jobs by themselves; this is for a script's own checks.
        """
        if queue is not None:
            check_name("queue", queue)
        if nb_seconds is not None:
            if nb_seconds < 0:
                raise ValueError(f"nb_seconds must be at least 0, not {nb_seconds}")
            older = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(
                seconds=nb_seconds
            )
            jobs = [
                job
                for job in await self.list_jobs_async(queue=queue, status=Status.DOING)
                if job.started_at is not None and job.started_at < older
            ]
        else:
            if not seconds_since_heartbeat > 0:
                raise ValueError(
                    "seconds_since_heartbeat must be positive, "
                    f"not {seconds_since_heartbeat}"
                )
            stalled = await self.connector.job_list_stalled(seconds_since_heartbeat)
            jobs = [j for j in stalled.jobs if queue is None or j.queue == queue]
        return [j for j in jobs if task_name is None or j.task_name == task_name]

    async def retry_job(
        self,
        job: Job,
        retry_at: datetime.datetime | None = None,
        priority: int | None = None,
        queue: str | None = None,
        lock: str | None = None,
    ) -> None:
        """Put a job back to ``todo``: a stalled ``doing`` job (as returned by
        :meth:`get_stalled_jobs`), or a failed, aborted or cancelled one.

        Raises:
            JobNotFound: a finished job that is not failed, aborted or cancelled.
        """
        if job.status is not Status.DOING:
            await self.retry_job_by_id_async(
                job.id, retry_at=retry_at, priority=priority, queue=queue, lock=lock
            )
            return
        if retry_at is not None and retry_at.utcoffset() is None:
            raise ValueError("retry_at must be timezone-aware")
        if queue is not None:
            check_name("queue", queue)
        # Written like a worker's retry (the rescuer's way), so the lock and
        # the attempt count follow the same rules; guarded by the status, so
        # a job that ended meanwhile is left alone.
        await self.connector.job_finish_many(
            [
                JobOutcome(
                    job_id=job.id,
                    status=Status.TODO,
                    error=JobError(
                        type="procrastinate_anyio._exceptions.StalledJob",
                        message=f"Job {job.id} was put back to todo by retry_job",
                    ),
                    lock=job.lock,
                    worker_id=job.worker_id,
                    retry_at=retry_at,
                    retry_priority=priority,
                    retry_queue=queue,
                    retry_lock=lock,
                )
            ]
        )

    async def delete_old_jobs(
        self,
        nb_hours: float,
        queue: str | None = None,
        include_failed: bool = False,
        include_cancelled: bool = False,
        include_aborted: bool = False,
    ) -> int:
        """Procrastinate's name of :meth:`delete_old_jobs_async`
        (``nb_hours`` is ``max_hours``); returns how many were deleted."""
        return await self.delete_old_jobs_async(
            max_hours=nb_hours,
            queue=queue,
            include_failed=include_failed,
            include_cancelled=include_cancelled,
            include_aborted=include_aborted,
        )

    async def move_from_procrastinate_async(
        self,
        *,
        dry_run: bool = False,
        force: bool = False,
        worker_timeout: float = DEFAULT_SECONDS_SINCE_HEARTBEAT,
    ) -> ProcrastinateMove:
        """Move the jobs waiting in Procrastinate 3.x's tables (``todo``,
        scheduled or not) into ours, with their queue, task, arguments,
        priority, locks, schedule and attempts, and the periodic ticks it
        deferred (so that periodic tasks do not defer them again). One
        transaction: all of it or nothing. The moved jobs are deleted from
        ``procrastinate_jobs``, so no job runs twice; running them again is
        safe (the second move finds nothing).

        Jobs that stay in Procrastinate's table, listed in the report's
        ``skipped``: those whose queueing lock is taken by one of our waiting
        jobs, those whose lock is held by one of its running jobs, and those
        our schema would refuse. Its ``doing`` jobs are never moved.

        Args:
            dry_run: write nothing; report what would move.
            force: move even though Procrastinate workers heartbeated within
                ``worker_timeout`` seconds (stop them first instead).
            worker_timeout: how recent a heartbeat makes a worker active
                (Procrastinate's stalled-worker timeout by default).

        Raises:
            MoveRefused: Procrastinate's tables or ours are absent, or its
                workers are active; nothing was written.
        """
        return await self.connector.job_move_from_procrastinate(
            MoveParams(dry_run=dry_run, force=force, worker_timeout=worker_timeout)
        )

    if TYPE_CHECKING:

        async def list_jobs_async(
            self, *, queue: str | None = ..., status: Status | str | None = ...
        ) -> list[Job]: ...


def _status(job_id: int, job: Job | None) -> Status:
    if job is None:
        raise JobNotFound(f"No job with id {job_id}")
    return job.status
