"""The rescuer: brings back the jobs of dead workers, then runs the database's
housekeeping (prune dead workers, let due scheduled jobs take their lock).

Every worker runs this service; the driver lets one worker at a time see the
stalled jobs (an advisory lock: River's leader election, reduced to what we
need), the others skip the pass.

A worker is dead when its heartbeat is older than ``stalled_worker_timeout``
(or its row is gone). The driver only lists its ``doing`` jobs (data only);
the decision is made here, with the same pure :func:`retry_outcome` as a job
that raised: back to ``todo``, or ``failed`` when the task's retry strategy
has no attempt left (the strategy is shown a :class:`StalledJob` error); a
task unknown to this worker's app goes back to ``todo``. The outcomes are
written guarded by the dead worker's id, so a job that its worker finished
meanwhile, or that another worker claimed since, is left alone. No user code
is needed (Procrastinate asks users to write a periodic task for this).
(River's ``job_rescuer.go`` has the same shape: list, decide, rescue many.)
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio
import attrs

from .._clock import SYSTEM_CLOCK
from .._exceptions import ConnectorException, StalledJob, TaskNotFound
from .._job import Job, Status
from .._retry import retry_outcome
from ..connectors._types import JobOutcome, MaintenanceParams
from ._runner import error_from_exception

if TYPE_CHECKING:
    import datetime

    from anyio.abc import TaskStatus

    from .._clock import Clock
    from .._task import TaskRegistry
    from ..connectors._protocols import AsyncConnector

logger = logging.getLogger("procrastinate_anyio.maintenance")


@attrs.frozen(kw_only=True)
class RescueResult:
    """One pass; ``leader`` False: another worker did it."""

    leader: bool
    recovered: tuple[JobOutcome, ...] = ()
    pruned_workers: int = 0
    promoted_locks: int = 0


def rescue_outcome(
    job: Job, registry: TaskRegistry, now: datetime.datetime
) -> JobOutcome:
    """Where a dead worker's job goes, written only if that worker still
    owns it."""
    exc = StalledJob(
        f"Worker {job.worker_id} stopped heartbeating while running the job"
    )
    error = error_from_exception(exc)
    try:
        strategy = registry.get_task(job.task_name).retry_strategy
    except TaskNotFound:
        outcome = JobOutcome(
            job_id=job.id, status=Status.TODO, error=error, lock=job.lock
        )
    else:
        # The strategy's delay applies too, as when the job raises.
        outcome = retry_outcome(
            job, exc, strategy, now, otherwise=Status.FAILED, error=error
        )
    return attrs.evolve(outcome, worker_id=job.worker_id)


class Rescuer:
    """Runs a rescue pass every ``interval`` seconds.

    Args:
        connector: where the jobs are.
        registry: finds each job's task (its retry strategy).
        stalled_worker_timeout: seconds without a heartbeat after which a
            worker is dead.
        interval: seconds between passes.
        clock: the time of day (retry delays).
    """

    def __init__(
        self,
        connector: AsyncConnector,
        registry: TaskRegistry,
        *,
        stalled_worker_timeout: float,
        interval: float,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not stalled_worker_timeout > 0 or not interval > 0:
            raise ValueError("stalled_worker_timeout and interval must be positive")
        self._connector = connector
        self._registry = registry
        self._stalled_worker_timeout = stalled_worker_timeout
        self._interval = interval
        self._clock = clock

    async def run(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        while True:
            await self.run_once()
            await anyio.sleep(self._interval)

    async def run_once(self) -> RescueResult | None:
        """One pass; None when the database could not be reached (logged)."""
        try:
            stalled = await self._connector.job_list_stalled(
                self._stalled_worker_timeout
            )
            recovered: tuple[JobOutcome, ...] = ()
            if stalled.jobs:
                now = self._clock.now()
                recovered = tuple(
                    rescue_outcome(job, self._registry, now) for job in stalled.jobs
                )
                await self._connector.job_finish_many(recovered)
            result = await self._connector.maintenance_run(
                MaintenanceParams(stalled_worker_timeout=self._stalled_worker_timeout)
            )
        except ConnectorException as exc:
            logger.warning(
                "Maintenance failed: %s", exc, extra={"action": "maintenance_error"}
            )
            return None
        if recovered:
            logger.warning(
                "Recovered %d stalled job(s) of dead workers",
                len(recovered),
                extra={
                    "action": "stalled_jobs_recovered",
                    "jobs": [o.job_id for o in recovered],
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
        return RescueResult(
            leader=stalled.leader or result.leader,
            recovered=recovered,
            pruned_workers=result.pruned_workers,
            promoted_locks=result.promoted_locks,
        )
