"""Maintenance: bring back the jobs of dead workers, prune dead workers, and
let due scheduled jobs take their lock.

Every worker runs this service, but each pass starts by trying a
transaction-level advisory lock: only one worker does the work at a time, the
others skip the pass (River's leader election, reduced to what we need).

A worker is dead when its heartbeat is older than ``stalled_worker_timeout``
(or its row is gone). Its ``doing`` jobs go back to ``todo``, or to
``failed`` when their task's retry strategy has no attempt left (the strategy
is shown a :class:`StalledJob` error); a task unknown to this worker's app goes
back to ``todo``. No user code is needed (Procrastinate asks users to write a
periodic task for this).
"""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING

import anyio

from .._exceptions import ConnectorException, ProcrastinateException, TaskNotFound
from .._job import Job, Status
from ..connectors._types import JobOutcome, MaintenanceParams, MaintenanceResult
from ._runner import error_from_exception

if TYPE_CHECKING:
    from anyio.abc import TaskStatus

    from .._app import App

logger = logging.getLogger("procrastinate_anyio.maintenance")


class StalledJob(ProcrastinateException):
    """The worker running the job stopped heartbeating (shown to retry strategies)."""


def recovery_outcome(app: App, job: Job) -> JobOutcome:
    """Where a stalled job goes: back to todo, or failed when its retry
    strategy refuses another attempt."""
    exc = StalledJob(
        f"Worker {job.worker_id} stopped heartbeating while running the job"
    )
    error = error_from_exception(exc)
    try:
        strategy = app.get_task(job.task_name).retry_strategy
    except TaskNotFound:
        return JobOutcome(job_id=job.id, status=Status.TODO, error=error, lock=job.lock)
    decision = strategy.get_retry_decision(exception=exc, job=job) if strategy else None
    if decision is None:
        return JobOutcome(
            job_id=job.id, status=Status.FAILED, error=error, lock=job.lock
        )
    return JobOutcome(
        job_id=job.id,
        status=Status.TODO,
        error=error,
        lock=job.lock,
        # The strategy's delay applies too, as when the job raises.
        retry_at=decision.scheduled_at(datetime.datetime.now(datetime.timezone.utc)),
        retry_priority=decision.priority,
        retry_queue=decision.queue,
        retry_lock=decision.lock,
    )


class Maintenance:
    """Runs a maintenance pass every ``interval`` seconds."""

    def __init__(
        self, app: App, *, stalled_worker_timeout: float, interval: float
    ) -> None:
        self._app = app
        self._params = MaintenanceParams(
            stalled_worker_timeout=stalled_worker_timeout,
            decide=lambda job: recovery_outcome(app, job),
        )
        self._interval = interval

    async def run(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        while True:
            await self.run_once()
            await anyio.sleep(self._interval)

    async def run_once(self) -> MaintenanceResult | None:
        """One pass; None when the database could not be reached."""
        try:
            result = await self._app.connector.maintenance_run(self._params)
        except ConnectorException as exc:
            logger.warning(
                "Maintenance failed: %s", exc, extra={"action": "maintenance_error"}
            )
            return None
        if result.recovered:
            logger.warning(
                "Recovered %d stalled job(s) of dead workers",
                len(result.recovered),
                extra={
                    "action": "stalled_jobs_recovered",
                    "jobs": [o.job_id for o in result.recovered],
                    "pruned_workers": result.pruned_workers,
                },
            )
        elif result.pruned_workers:
            logger.info(
                "Pruned %d dead worker(s)",
                result.pruned_workers,
                extra={
                    "action": "workers_pruned",
                    "pruned_workers": result.pruned_workers,
                },
            )
        return result
