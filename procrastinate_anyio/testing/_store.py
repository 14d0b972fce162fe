"""The in-memory store: jobs in a dict, and the PostgreSQL driver's rules
written again in Python, rule for rule (ready set, lock lines, queueing locks,
statuses). The conformance suite in ``tests/driver/`` runs against both, so
where they differ, a test fails. The connectors of :mod:`._memory` are its
async and sync facades."""

from __future__ import annotations

import datetime
import itertools
import time
import types
from typing import TYPE_CHECKING, Any

import attrs

from .. import _json
from .._clock import SYSTEM_CLOCK
from .._exceptions import AlreadyEnqueued, MoveRefused
from .._job import NO_HEADERS, Job, JobToDefer, Status
from .._limits import look_ahead, pick, room
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
    without_queueing_lock_conflicts,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


@attrs.define
class _Row:
    """A mutable job row, like a pa_jobs row."""

    job: Job
    lock_waiting: bool = False

    @property
    def is_lock_active(self) -> bool:
        status = self.job.status
        return status is Status.DOING or (
            status is Status.TODO and not self.lock_waiting
        )


@attrs.define
class _Worker:
    id: int
    name: str
    queues: tuple[str, ...] | None
    started_at: datetime.datetime
    last_heartbeat: datetime.datetime


class InMemoryStore:
    """The state and rules shared by the async and sync in-memory connectors.
    No I/O: every method runs to completion without yielding."""

    def __init__(
        self, clock: Callable[[], datetime.datetime] = SYSTEM_CLOCK.now
    ) -> None:
        self.clock = clock
        self.rows: dict[int, _Row] = {}
        self.workers: dict[int, _Worker] = {}
        self.applied_migrations: list[str] | None = None
        self.listeners: list[Callable[[Notification], object]] = []
        self.periodic_ticks: dict[tuple[str, str, int], int] = {}
        self.paused_queues: dict[str, datetime.datetime] = {}
        self.limit_starts: dict[str, list[datetime.datetime]] = {}
        self._job_ids = itertools.count(1)
        self._worker_ids = itertools.count(1)

    def reset(self) -> None:
        """Forget every job and worker (between tests)."""
        self.rows.clear()
        self.workers.clear()
        self.periodic_ticks.clear()
        self.paused_queues.clear()
        self.limit_starts.clear()

    def notify(self, notification: Notification) -> None:
        """Deliver to every listener, like NOTIFY (call from the event loop's
        thread: listeners set AnyIO events)."""
        for listener in list(self.listeners):
            listener(notification)

    # -- locks ---------------------------------------------------------------

    def _is_candidate(self, row: _Row, now: datetime.datetime) -> bool:
        job = row.job
        return job.status is Status.TODO and (
            job.attempts > 0 or job.scheduled_at is None or job.scheduled_at <= now
        )

    def _rebalance(self, locks: Sequence[str]) -> None:
        """Make each free lock's best candidate its active job (see the
        job_lock_rebalance_* queries)."""
        now = self.clock()
        for lock in set(locks):
            rows = [r for r in self.rows.values() if r.job.lock == lock]
            if any(r.job.status is Status.DOING for r in rows):
                continue
            candidates = [r for r in rows if self._is_candidate(r, now)]
            retrying = [
                r
                for r in rows
                if r.job.status is Status.TODO and not r.lock_waiting and r.job.attempts
            ]
            if retrying:
                # The active job waits for its retry: it keeps its lock.
                best = retrying[0]
            elif candidates:
                best = min(candidates, key=lambda r: (-r.job.priority, r.job.id))
            else:
                # Only future jobs: the earliest must be active, to be
                # fetched once due (nothing rebalances when time passes).
                todo = [r for r in rows if r.job.status is Status.TODO]
                if not todo:
                    continue
                best = min(
                    todo, key=lambda r: (r.job.scheduled_at, -r.job.priority, r.job.id)
                )
            for row in rows:
                if row.job.status is Status.TODO:
                    row.lock_waiting = row is not best

    # -- jobs ----------------------------------------------------------------

    def job_defer_many(self, jobs: Sequence[JobToDefer]) -> list[int]:
        waiting = {
            r.job.queueing_lock
            for r in self.rows.values()
            if r.job.status is Status.TODO
        }
        seen: set[str] = set()
        for job in jobs:
            if job.queueing_lock is None:
                continue
            if job.queueing_lock in waiting or job.queueing_lock in seen:
                raise AlreadyEnqueued(
                    "A job with this queueing lock is already waiting: "
                    f"{job.queueing_lock!r}",
                    queueing_lock=job.queueing_lock,
                )
            seen.add(job.queueing_lock)
        now = self.clock()
        ids = []
        for job in jobs:
            job_id = next(self._job_ids)
            self.rows[job_id] = _Row(
                job=Job(
                    id=job_id,
                    queue=job.queue,
                    task_name=job.task_name,
                    task_kwargs=_json.loads(job.args_json),
                    priority=job.priority,
                    lock=job.lock,
                    queueing_lock=job.queueing_lock,
                    scheduled_at=job.scheduled_at,
                    created_at=now,
                    # Through JSON, like jsonb, read-only like the driver's;
                    # none: the shared empty mapping.
                    headers=types.MappingProxyType(
                        _json.loads(_json.dumps(dict(job.headers)))
                    )
                    if job.headers
                    else NO_HEADERS,
                ),
                lock_waiting=job.lock is not None,
            )
            ids.append(job_id)
        self._rebalance([job.lock for job in jobs if job.lock is not None])
        if jobs:
            self.notify(
                Notification(
                    kind="defer", queues=tuple(sorted({job.queue for job in jobs}))
                )
            )
        return ids

    def job_get(self, job_id: int) -> Job | None:
        row = self.rows.get(job_id)
        return None if row is None else row.job

    def job_list(self, filters: JobFilter) -> list[Job]:
        checks: list[tuple[str, Any]] = [
            ("id", filters.id),
            ("queue", filters.queue),
            ("task_name", filters.task_name),
            ("status", filters.status),
            ("lock", filters.lock),
            ("queueing_lock", filters.queueing_lock),
            ("worker_id", filters.worker_id),
        ]
        active = [(name, value) for name, value in checks if value is not None]
        found = [
            row.job
            for _, row in sorted(self.rows.items())
            if all(getattr(row.job, name) == value for name, value in active)
        ]
        return found[: filters.limit]

    def job_cancel(self, params: CancelParams) -> bool:
        row = self.rows.get(params.job_id)
        if row is None:
            return False
        job = row.job
        if job.status is Status.TODO:
            if params.delete_job:
                del self.rows[job.id]
            else:
                row.job = attrs.evolve(
                    job, status=Status.CANCELLED, finished_at=self.clock()
                )
                row.lock_waiting = False
            if job.lock is not None:
                self._rebalance([job.lock])
            return True
        if job.status is Status.DOING and params.abort:
            row.job = attrs.evolve(job, abort_requested=True)
            self.notify(Notification(kind="abort", job_id=job.id))
            return True
        return False

    def job_abort_requested_many(self, job_ids: Sequence[int]) -> list[int]:
        return [
            job_id
            for job_id in job_ids
            if (row := self.rows.get(job_id)) is not None and row.job.abort_requested
        ]

    def job_fetch_many(self, params: FetchParams) -> list[Job]:
        now = self.clock()
        ready = sorted(
            (
                row
                for row in self.rows.values()
                if row.job.status is Status.TODO
                and not row.lock_waiting
                and (row.job.scheduled_at is None or row.job.scheduled_at <= now)
                and (params.queues is None or row.job.queue in params.queues)
                and row.job.queue not in self.paused_queues
            ),
            key=lambda row: (-row.job.priority, row.job.id),
        )
        if params.limits:
            chosen = self._pick_under_limits(ready, params, now)
        else:
            chosen = ready[: params.limit]
        claimed = []
        for row in chosen:
            row.job = attrs.evolve(
                row.job,
                status=Status.DOING,
                worker_id=params.worker_id,
                started_at=now,
                abort_requested=False,
            )
            claimed.append(row.job)
        return claimed

    def _retry_conflicts(self, outcomes: Sequence[JobOutcome]) -> set[int]:
        """Like the job_retry_conflicts query."""
        retry_ids = {o.job_id for o in outcomes if o.status is Status.TODO}
        if not retry_ids:
            return set()
        waiting = {
            r.job.queueing_lock
            for r in self.rows.values()
            if r.job.status is Status.TODO
        }
        conflicting = set()
        for job_id in sorted(retry_ids):
            row = self.rows.get(job_id)
            lock = None if row is None else row.job.queueing_lock
            if lock is None:
                continue
            earlier = any(
                self.rows[other].job.queueing_lock == lock
                for other in retry_ids
                if other < job_id and other in self.rows
            )
            if lock in waiting or earlier:
                conflicting.add(job_id)
        return conflicting

    def job_finish_many(self, outcomes: Sequence[JobOutcome]) -> list[int]:
        outcomes = without_queueing_lock_conflicts(
            outcomes, self._retry_conflicts(outcomes)
        )
        now = self.clock()
        locks = []
        finished = []
        refused = set()
        for outcome in outcomes:
            row = self.rows.get(outcome.job_id)
            if (
                row is None
                or row.job.status is not Status.DOING
                or (
                    outcome.worker_id is not None
                    and row.job.worker_id != outcome.worker_id
                )
                or (
                    outcome.started_at is not None
                    and row.job.started_at != outcome.started_at
                )
            ):
                refused.add(outcome.job_id)
                continue
            job = row.job
            if outcome.recovered:
                job = row.job = attrs.evolve(job, recoveries=job.recoveries + 1)
            # Like PostgreSQL: the locks to rebalance are those the outcome names.
            if outcome.lock is not None:
                locks.append(outcome.lock)
            if outcome.status is not Status.TODO:
                finished.append(job.id)
            if outcome.delete_job:
                del self.rows[job.id]
                continue
            if outcome.status is Status.TODO:
                new_lock = (
                    outcome.retry_lock if outcome.retry_lock is not None else job.lock
                )
                if outcome.retry_lock is not None:
                    locks.append(outcome.retry_lock)
                row.lock_waiting = new_lock is not None and new_lock != job.lock
                row.job = attrs.evolve(
                    job,
                    status=Status.TODO,
                    attempts=job.attempts + (0 if outcome.released else 1),
                    result=None,
                    error=outcome.error,
                    finished_at=None,
                    scheduled_at=outcome.retry_at or now,
                    priority=(
                        outcome.retry_priority
                        if outcome.retry_priority is not None
                        else job.priority
                    ),
                    queue=outcome.retry_queue or job.queue,
                    lock=new_lock,
                )
            else:
                row.lock_waiting = False
                row.job = attrs.evolve(
                    job,
                    status=outcome.status,
                    attempts=job.attempts + 1,
                    # Through JSON, like jsonb: a tuple comes back a list.
                    result=(
                        _json.loads(_json.dumps(outcome.result))
                        if outcome.status is Status.SUCCEEDED
                        else None
                    ),
                    error=outcome.error,
                    finished_at=now,
                )
        self._rebalance(locks)
        if finished:
            self.notify(Notification(kind="finished", job_ids=tuple(finished)))
        return sorted(refused)

    def job_retry(self, params: RetryParams) -> bool:
        row = self.rows.get(params.job_id)
        retryable = (Status.FAILED, Status.ABORTED, Status.CANCELLED)
        if row is None or row.job.status not in retryable:
            return False
        job = row.job
        if job.queueing_lock is not None and any(
            r.job.queueing_lock == job.queueing_lock and r.job.status is Status.TODO
            for r in self.rows.values()
        ):
            raise AlreadyEnqueued(
                f"A job with this queueing lock is already waiting: {job.queueing_lock!r}",
                queueing_lock=job.queueing_lock,
            )
        lock = params.lock if params.lock is not None else job.lock
        row.job = attrs.evolve(
            job,
            status=Status.TODO,
            scheduled_at=params.retry_at or self.clock(),
            priority=params.priority if params.priority is not None else job.priority,
            queue=params.queue if params.queue is not None else job.queue,
            lock=lock,
            finished_at=None,
            abort_requested=False,
        )
        row.lock_waiting = lock is not None
        self._rebalance([x for x in (job.lock, lock) if x is not None])
        self.notify(Notification(kind="defer", queues=(row.job.queue,)))
        return True

    def job_stats(self, group_by: str, filters: JobFilter) -> list[GroupStats]:
        attribute = {"queue": "queue", "task": "task_name", "lock": "lock"}[group_by]
        groups: dict[str, dict[str, int]] = {}
        for job in self.job_list(attrs.evolve(filters, limit=len(self.rows) + 1)):
            name = getattr(job, attribute)
            if name is None:
                continue
            counts = groups.setdefault(
                name, dict.fromkeys(("jobs_count", *(s.value for s in Status)), 0)
            )
            counts["jobs_count"] += 1
            counts[job.status.value] += 1
        return [
            GroupStats(name=name, **groups[name])
            for name in sorted(groups)[: filters.limit]
        ]

    def job_delete_old(self, params: DeleteOldParams) -> int:
        limit = self.clock() - params.older_than
        doomed = [
            job_id
            for job_id, row in self.rows.items()
            if row.job.status in params.statuses
            and row.job.finished_at is not None
            and row.job.finished_at < limit
            and (params.queue is None or row.job.queue == params.queue)
        ]
        for job_id in doomed:
            del self.rows[job_id]
        return len(doomed)

    def _promote_due_locks(self) -> int:
        now = self.clock()
        active = {row.job.lock for row in self.rows.values() if row.is_lock_active}
        locks = sorted(
            {
                row.job.lock
                for row in self.rows.values()
                if row.job.lock is not None
                and row.job.lock not in active
                and row.job.status is Status.TODO
                and row.lock_waiting
                and row.job.attempts == 0
                and row.job.scheduled_at is not None
                and row.job.scheduled_at <= now
            }
        )
        self._rebalance(locks)
        return len(locks)

    def _pick_under_limits(
        self, ready: list[_Row], params: FetchParams, now: datetime.datetime
    ) -> list[_Row]:
        """The claim under global limits, as the PostgreSQL driver makes it."""
        limits = params.limits
        doing = {
            limit.key: sum(
                1
                for row in self.rows.values()
                if row.job.status is Status.DOING
                and limit.covers(row.job.task_name, row.job.queue)
            )
            for limit in limits
        }
        started = {
            limit.key: sum(
                1
                for at in self.limit_starts.get(limit.key, [])
                if at > now - datetime.timedelta(seconds=limit.rate.period_seconds)
            )
            for limit in limits
            if limit.rate is not None
        }
        free = room(limits, doing, started)

        chosen, starts = pick(
            ready[: look_ahead(params.limit)],  # as far as PostgreSQL looks
            limits,
            free,
            params.limit,
            where=lambda row: (row.job.task_name, row.job.queue),
        )
        for key in starts:
            self.limit_starts.setdefault(key, []).append(now)
        return chosen

    def job_move_from_procrastinate(self, params: MoveParams) -> ProcrastinateMove:
        """Refused, as PostgreSQL refuses a database without Procrastinate's
        tables: memory never has them."""
        if self.applied_migrations is None:
            raise MoveRefused(
                "procrastinate_anyio's schema is missing: run "
                "`procrastinate-anyio schema --apply` first"
            )
        raise MoveRefused(
            "Procrastinate's tables are absent (procrastinate_jobs, "
            "procrastinate_events, procrastinate_periodic_defers): nothing to "
            "move (the in-memory connector has none)"
        )

    def job_next_scheduled_at(
        self, queues: Sequence[str] | None
    ) -> datetime.datetime | None:
        self._promote_due_locks()
        now = self.clock()
        due = [
            row.job.scheduled_at
            for row in self.rows.values()
            if row.job.status is Status.TODO
            and row.job.scheduled_at is not None
            and row.job.scheduled_at > now
            and (queues is None or row.job.queue in queues)
            and row.job.queue not in self.paused_queues
        ]
        return min(due, default=None)

    def periodic_defer(self, params: PeriodicDeferParams) -> int | None:
        key = (params.job.task_name, params.periodic_id, params.defer_timestamp)
        if key in self.periodic_ticks:
            return None
        (job_id,) = self.job_defer_many([params.job])
        self.periodic_ticks[key] = job_id
        for old in [
            k
            for k in self.periodic_ticks
            if k[:2] == key[:2] and k[2] < params.keep_after
        ]:
            del self.periodic_ticks[old]
        return job_id

    def job_list_stalled(self, stalled_worker_timeout: float) -> StalledJobs:
        limit = self.clock() - datetime.timedelta(seconds=stalled_worker_timeout)
        alive = {w.id for w in self.workers.values() if w.last_heartbeat > limit}
        return StalledJobs(
            leader=True,
            jobs=tuple(
                row.job
                for _, row in sorted(self.rows.items())
                if row.job.status is Status.DOING and row.job.worker_id not in alive
            ),
        )

    def maintenance_run(self, params: MaintenanceParams) -> MaintenanceResult:
        limit = self.clock() - datetime.timedelta(seconds=params.stalled_worker_timeout)
        dead = [w.id for w in self.workers.values() if w.last_heartbeat < limit]
        for worker_id in dead:
            del self.workers[worker_id]
        oldest = self.clock() - datetime.timedelta(minutes=61)
        for key, starts in list(self.limit_starts.items()):
            self.limit_starts[key] = [at for at in starts if at >= oldest]
        return MaintenanceResult(
            leader=True,
            pruned_workers=len(dead),
            promoted_locks=self._promote_due_locks(),
        )

    def queue_list_paused(self) -> list[PausedQueue]:
        return [
            PausedQueue(name=name, paused_at=at)
            for name, at in sorted(self.paused_queues.items())
        ]

    def queue_pause(self, queue: str) -> bool:
        if queue in self.paused_queues:
            return False
        self.paused_queues[queue] = self.clock()
        return True

    def queue_resume(self, queue: str) -> bool:
        if self.paused_queues.pop(queue, None) is None:
            return False
        self.notify(Notification(kind="defer", queues=(queue,)))
        return True

    def job_wait_finished(self, job_id: int, timeout: float | None) -> Job | None:
        """Polls: there is no other process to wait for; a worker in another
        thread of this process may finish the job."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.job_get(job_id)
            if job is None or job.status.is_final:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                return job
            time.sleep(0.005)

    # -- workers -------------------------------------------------------------

    def worker_register(
        self, name: str, queues: Sequence[str] | None, worker_id: int | None = None
    ) -> int:
        now = self.clock()
        if worker_id is None:
            worker_id = next(self._worker_ids)
        elif worker_id in self.workers:
            self.workers[worker_id].last_heartbeat = now
            return worker_id
        self.workers[worker_id] = _Worker(
            id=worker_id,
            name=name,
            queues=None if queues is None else tuple(queues),
            started_at=now,
            last_heartbeat=now,
        )
        return worker_id

    def worker_heartbeat(self, worker_id: int) -> bool:
        worker = self.workers.get(worker_id)
        if worker is None:
            return False
        worker.last_heartbeat = self.clock()
        return True

    def worker_unregister(self, worker_id: int) -> None:
        self.workers.pop(worker_id, None)

    # -- schema --------------------------------------------------------------

    def schema_applied_migrations(self) -> list[str] | None:
        # By name, like the schema_applied_migrations query.
        return (
            None if self.applied_migrations is None else sorted(self.applied_migrations)
        )

    def schema_apply(
        self, schema_sql: str, migrations: Sequence[tuple[str, str]]
    ) -> list[str]:
        done = set(self.applied_migrations or [])
        missing = [name for name, _ in migrations if name not in done]
        self.applied_migrations = [*(self.applied_migrations or []), *missing]
        return missing
