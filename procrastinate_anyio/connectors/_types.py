"""The records that cross the driver seam: the parameters of operations and
what they return. Frozen attrs classes, so they can be shared and compared."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Literal

import attrs

from .._job import Status

if TYPE_CHECKING:
    import datetime
    from collections.abc import Sequence

    from .._job import Job, JobError, JobToDefer
    from .._json import JSONValue
    from .._limits import Limit


@attrs.frozen(kw_only=True)
class JobFilter:
    """Which jobs :meth:`~procrastinate_anyio.AsyncConnector.job_list`
    returns; None means "any"."""

    id: int | None = None
    queue: str | None = None
    task_name: str | None = None
    status: Status | None = None
    lock: str | None = None
    queueing_lock: str | None = None
    worker_id: int | None = None
    limit: int | None = None

    def __attrs_post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be at least 1, not {self.limit}")


@attrs.frozen(kw_only=True)
class FetchParams:
    """Claim up to ``limit`` ready jobs for ``worker_id``.

    ``queues`` None means every queue.
    """

    worker_id: int
    queues: Sequence[str] | None
    limit: int
    limits: tuple[Limit, ...] = ()
    """Global limits to respect (the claim then serialises with the other
    workers' claims of the same limits); empty: the plain claim."""


@attrs.frozen(kw_only=True)
class JobOutcome:
    """How one attempt of a job ended, as the worker reports it.

    ``status`` is the final status, or ``TODO`` to retry the job at
    ``retry_at`` (None: at once) with the optional new priority, queue and lock.
    ``lock`` must be the job's lock when it was claimed: its end frees that
    lock, and the lock's next job becomes active.
    ``worker_id``, when given, must still own the job: an outcome of a worker
    whose job was recovered and claimed again elsewhere is ignored.
    ``started_at``, when given, is the attempt token: the job's ``started_at``
    when it was claimed. Every claim sets it anew, so the outcome of an
    attempt that was recovered, even if the same worker claimed the job
    again since, is ignored too.
    ``recovered``: the outcome of a crash recovery; the job's
    ``recoveries`` grows by one.
    ``released``: the job was claimed but never started (claimed ahead, and
    the worker stopped): back to ``todo`` without counting an attempt.
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
    started_at: datetime.datetime | None = None
    recovered: bool = False
    released: bool = False

    def of_attempt(
        self, *, worker_id: int, started_at: datetime.datetime | None, delete_job: bool
    ) -> JobOutcome:
        """This outcome, of the attempt of ``worker_id`` that the claim started
        at ``started_at``: ``attrs.evolve`` without its cost (once per job)."""
        return JobOutcome(
            job_id=self.job_id,
            status=self.status,
            lock=self.lock,
            worker_id=worker_id,
            result=self.result,
            error=self.error,
            retry_at=self.retry_at,
            retry_priority=self.retry_priority,
            retry_queue=self.retry_queue,
            retry_lock=self.retry_lock,
            delete_job=delete_job,
            started_at=started_at,
            recovered=self.recovered,
            released=self.released,
        )


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
class GroupStats(Mapping[str, "str | int"]):
    """Job counts of one queue, task or lock (``list_queues`` and friends).

    Also a read-only mapping of the same keys (``stats["todo"]``,
    ``dict(stats)``), the dicts Procrastinate's ``list_queues`` returns.
    """

    name: str
    jobs_count: int
    todo: int = 0
    doing: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    aborted: int = 0

    def __getitem__(self, key: str) -> str | int:
        if key not in _GROUP_STATS_KEYS:
            raise KeyError(key)
        value: str | int = getattr(self, key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(_GROUP_STATS_KEYS)

    def __len__(self) -> int:
        return len(_GROUP_STATS_KEYS)


_GROUP_STATS_KEYS: tuple[str, ...] = tuple(
    field.name for field in attrs.fields(GroupStats)
)


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
    seconds are dead."""

    stalled_worker_timeout: float


@attrs.frozen(kw_only=True)
class MaintenanceResult:
    """What a maintenance pass did; ``leader`` False: another worker holds the
    maintenance lock, nothing was done."""

    leader: bool
    pruned_workers: int = 0
    promoted_locks: int = 0


@attrs.frozen(kw_only=True)
class StalledJobs:
    """The ``doing`` jobs of dead workers; ``leader`` False: another worker
    is looking for them now (and ``jobs`` is empty)."""

    leader: bool
    jobs: tuple[Job, ...] = ()


@attrs.frozen(kw_only=True)
class PausedQueue:
    """A queue whose jobs workers do not claim, and since when."""

    name: str
    paused_at: datetime.datetime


@attrs.frozen(kw_only=True)
class MoveParams:
    """Move Procrastinate's waiting jobs and periodic ticks into ours
    (``job_manager.move_from_procrastinate_async()``).

    ``dry_run``: write nothing, report what would move. ``force``: move even
    though Procrastinate workers heartbeated within ``worker_timeout`` seconds.
    """

    dry_run: bool = False
    force: bool = False
    worker_timeout: float = 30.0

    def __attrs_post_init__(self) -> None:
        if not self.worker_timeout > 0:
            raise ValueError(
                f"worker_timeout must be positive, not {self.worker_timeout}"
            )


@attrs.frozen(kw_only=True)
class MoveSkip:
    """A waiting Procrastinate job that was not moved (it stays in
    ``procrastinate_jobs``), and why."""

    job_id: int
    reason: str


@attrs.frozen(kw_only=True)
class ProcrastinateMove:
    """What a move from Procrastinate's tables did (or, ``dry_run``, would do).

    ``moved``: the ids of the moved jobs in ``procrastinate_jobs``, in order;
    ``new_ids``: their ids here, in the same order (empty in a dry run);
    ``scheduled``: how many of them are scheduled in the future;
    ``periodic_ticks``: deferred periodic ticks recorded here;
    ``skipped``: waiting jobs left where they are; ``doing``: Procrastinate's
    running jobs, never moved; ``active_workers``: its workers that
    heartbeated recently (non-zero only with ``force``).
    """

    dry_run: bool
    moved: tuple[int, ...] = ()
    new_ids: tuple[int, ...] = ()
    scheduled: int = 0
    periodic_ticks: int = 0
    skipped: tuple[MoveSkip, ...] = ()
    doing: int = 0
    active_workers: int = 0

    def summary(self) -> str:
        """One line for an operator."""
        verb = "Would move" if self.dry_run else "Moved"
        parts = [
            f"{verb} {len(self.moved)} job(s) ({self.scheduled} scheduled) and "
            f"{self.periodic_ticks} periodic tick(s) from Procrastinate's tables",
            f"skipped {len(self.skipped)} waiting job(s)",
            f"left {self.doing} doing job(s)",
        ]
        if self.active_workers:
            parts.append(f"{self.active_workers} Procrastinate worker(s) active")
        return "; ".join(parts)
