"""The rescuer: brings back the jobs of dead workers, then runs the database's
housekeeping (prune dead workers, let due scheduled jobs take their lock).

Every worker runs this service; the driver lets one worker at a time see the
stalled jobs (an advisory lock: River's leader election, reduced to what we
need), the others skip the pass.

A worker is dead when its heartbeat is older than ``stalled_worker_timeout``
(or its row is gone). The driver only lists its ``doing`` jobs (data only);
the decision is made here. A crash is not the task's failure: the job goes
back to ``todo`` at once, its retry strategy is not asked, and its
``recoveries`` counter grows. A job that kills its worker every time (out of
memory, a segfault in an extension) would otherwise loop forever: once its
recoveries pass ``max_crash_recoveries`` it fails, with a
:class:`StalledJob` error that says so. The outcomes are written guarded by
the dead worker's id and the attempt token (the claim's ``started_at``), so
a job that its worker finished meanwhile, or that was claimed again since,
is left alone. No user code runs here, so nothing here can raise on a
task's behalf. (River's ``job_rescuer.go`` has the same shape: list, decide,
rescue many.)
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

import anyio
import attrs

from .._exceptions import ConnectorException, StalledJob
from .._job import Job, Status
from ..connectors._types import JobOutcome, MaintenanceParams
from ._runner import error_from_exception

if TYPE_CHECKING:
    from anyio.abc import TaskStatus

    from ..connectors._protocols import AsyncConnector

logger = logging.getLogger("procrastinate_anyio.maintenance")

DEFAULT_MAX_CRASH_RECOVERIES: Final = 3
"""How many times a job may be brought back after its worker died."""


@attrs.frozen(kw_only=True)
class RescueResult:
    """One pass; ``leader`` False: another worker did it."""

    leader: bool
    recovered: tuple[JobOutcome, ...] = ()
    pruned_workers: int = 0
    promoted_locks: int = 0


def rescue_outcome(job: Job, max_crash_recoveries: int) -> JobOutcome:
    """Where a dead worker's job goes, written only if that worker still
    owns that attempt: back to ``todo`` at once, or ``failed`` once the job
    has been recovered more than ``max_crash_recoveries`` times."""
    crashes = job.recoveries + 1
    if crashes > max_crash_recoveries:
        exc = StalledJob(
            f"Worker {job.worker_id} stopped heartbeating while running the job, "
            f"{crashes} time(s) in all, more than max_crash_recoveries "
            f"({max_crash_recoveries}): the job fails"
        )
        status = Status.FAILED
    else:
        exc = StalledJob(
            f"Worker {job.worker_id} stopped heartbeating while running the job "
            f"(crash recovery {crashes} of at most {max_crash_recoveries})"
        )
        status = Status.TODO
    return JobOutcome(
        job_id=job.id,
        status=status,
        error=error_from_exception(exc),
        lock=job.lock,
        worker_id=job.worker_id,
        started_at=job.started_at,
        recovered=True,
    )


class Rescuer:
    """Runs a rescue pass every ``interval`` seconds.

    Args:
        connector: where the jobs are.
        stalled_worker_timeout: seconds without a heartbeat after which a
            worker is dead.
        interval: seconds between passes.
        max_crash_recoveries: how many times a job may be recovered; the
            next crash fails it.
    """

    def __init__(
        self,
        connector: AsyncConnector,
        *,
        stalled_worker_timeout: float,
        interval: float,
        max_crash_recoveries: int = DEFAULT_MAX_CRASH_RECOVERIES,
    ) -> None:
        if not stalled_worker_timeout > 0 or not interval > 0:
            raise ValueError("stalled_worker_timeout and interval must be positive")
        if max_crash_recoveries < 0:
            raise ValueError(
                f"max_crash_recoveries must be at least 0, not {max_crash_recoveries}"
            )
        self._connector = connector
        self._stalled_worker_timeout = stalled_worker_timeout
        self._interval = interval
        self._max_crash_recoveries = max_crash_recoveries

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
                recovered = tuple(
                    rescue_outcome(job, self._max_crash_recoveries)
                    for job in stalled.jobs
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
                    "failed": [
                        o.job_id for o in recovered if o.status is Status.FAILED
                    ],
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
