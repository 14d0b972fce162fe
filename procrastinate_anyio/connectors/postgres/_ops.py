"""The PostgreSQL driver's operations, written once for the async and the sync
connector.

Each operation is a generator: it yields :class:`Statement` objects (a named
query and its parameters) and receives each statement's rows back; its return
value is the operation's result. The async connector drives it with ``await``,
the sync connector with plain calls, and a caller's own connection can drive it
too (transactional defer). This is how psycopg itself shares code between its
sync and async connections.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

import attrs
from psycopg import errors as pg_errors
from psycopg import pq

from ... import _json
from ..._exceptions import AlreadyEnqueued, MoveRefused, SchemaError
from ..._job import NO_HEADERS, Job, JobError, JobToDefer, Status
from ..._limits import look_ahead
from ..._sql import queries
from .._types import (
    CancelParams,
    DeleteOldParams,
    FetchParams,
    GroupStats,
    JobFilter,
    JobOutcome,
    MaintenanceParams,
    MaintenanceResult,
    MoveParams,
    MoveSkip,
    Notification,
    PausedQueue,
    PeriodicDeferParams,
    ProcrastinateMove,
    RetryParams,
    StalledJobs,
    without_queueing_lock_conflicts,
)
from ._redact import connector_error

if TYPE_CHECKING:
    import datetime
import functools

T = TypeVar("T")
Row = Mapping[str, Any]


@attrs.frozen
class Statement:
    """A named query of ``sql/queries.sql`` with its parameters."""

    name: str
    params: Mapping[str, Any] = attrs.field(factory=dict)
    script: str | None = None
    """When set, this SQL text (several statements, no parameters) runs
    instead of the named query; used by the migration runner."""
    jobs: bool = False
    """The rows are whole ``pa_jobs`` rows, read straight into :class:`Job`
    records (:func:`job_rows`) instead of dicts."""

    def query(self) -> bytes:
        """The SQL to send (bytes: psycopg's typed API wants literals or bytes)."""
        text = self.script if self.script is not None else queries()[self.name]
        return text.encode()


Operation = Generator[Statement, list[Row], T]

BEGIN: Final = Statement("BEGIN")
"""Yielded first by an operation whose statements must share one transaction;
the runner opens it (and answers with no rows). Operations decide at run time,
so that the common case (one statement) costs one round trip."""


def in_callers_transaction(connection: Any, op: Operation[T]) -> Operation[T]:
    """``op``, to run on a caller's own connection, in the caller's transaction.

    On a connection that is not in autocommit mode and has not started its
    transaction yet, psycopg's ``transaction()`` (what the runner does for an
    operation's ``BEGIN``) opens a transaction and COMMITS it at exit: the
    jobs would stay even if the caller then rolled back. There, the first
    statement opens the caller's transaction anyway, so ``BEGIN`` is dropped.
    """
    if connection.autocommit or (
        connection.info.transaction_status != pq.TransactionStatus.IDLE
    ):
        return op

    def without_begin() -> Operation[T]:
        try:
            statement = next(op)
            while True:
                rows = [] if statement is BEGIN else (yield statement)
                statement = op.send(rows)
        except StopIteration as stop:
            result: T = stop.value
            return result

    return without_begin()


_STATUSES: Final = {status.value: status for status in Status}


_JOB_COLUMNS: Final = (
    "id",
    "queue_name",
    "task_name",
    "args",
    "priority",
    "lock",
    "queueing_lock",
    "status",
    "scheduled_at",
    "attempts",
    "abort_requested",
    "worker_id",
    "created_at",
    "started_at",
    "finished_at",
    "result",
    "error_type",
    "error_message",
    "error_traceback",
    "recoveries",
    "headers",
)


def job_rows(cursor: Any) -> Callable[[Sequence[Any]], Job]:
    """A psycopg row factory for whole ``pa_jobs`` rows: each row straight
    into a :class:`Job`, without the dict of ``dict_row`` (once per claimed
    job). The columns are found by name, once per result."""
    at = {column.name: i for i, column in enumerate(cursor.description)}
    (
        id_,
        queue,
        task_name,
        args,
        priority,
        lock,
        queueing_lock,
        status,
        scheduled_at,
        attempts,
        abort_requested,
        worker_id,
        created_at,
        started_at,
        finished_at,
        result,
        error_type,
        error_message,
        error_traceback,
        recoveries,
        headers,
    ) = (at[name] for name in _JOB_COLUMNS)
    statuses = _STATUSES

    def make(row: Sequence[Any]) -> Job:
        error = None
        if row[error_type] is not None:
            error = JobError(
                type=row[error_type],
                message=row[error_message] or "",
                traceback=row[error_traceback],
            )
        row_headers = row[headers]
        return Job(
            id=row[id_],
            queue=row[queue],
            task_name=row[task_name],
            task_kwargs=row[args],
            priority=row[priority],
            lock=row[lock],
            queueing_lock=row[queueing_lock],
            status=statuses[row[status]],
            scheduled_at=row[scheduled_at],
            attempts=row[attempts],
            abort_requested=row[abort_requested],
            worker_id=row[worker_id],
            created_at=row[created_at],
            started_at=row[started_at],
            finished_at=row[finished_at],
            result=row[result],
            error=error,
            recoveries=row[recoveries],
            # Read-only, like every field of a Job.
            headers=types.MappingProxyType(row_headers) if row_headers else NO_HEADERS,
        )

    return make


def _as_jobs(rows: list[Row]) -> list[Job]:
    """The rows of a ``jobs=True`` statement, which are Jobs already."""
    return cast("list[Job]", rows)


_QUEUEING_LOCK_DETAIL: Final = re.compile(
    r"^Key \(queueing_lock\)=\((?P<lock>.*)\) already exists\.$", re.DOTALL
)


def translate_error(exc: Exception, secrets: Sequence[str] = ()) -> Exception:
    """Turn a psycopg error into the library's exception for it, with the
    ``secrets`` (see :mod:`._redact`) masked in its message."""
    if isinstance(exc, pg_errors.UniqueViolation):
        constraint = exc.diag.constraint_name
        if constraint == "pa_jobs_queueing_lock_idx":
            # "Key (queueing_lock)=(value) already exists." (in English: the
            # server's lc_messages may translate it, then the lock is unknown)
            detail = exc.diag.message_detail or ""
            match = _QUEUEING_LOCK_DETAIL.match(detail)
            queueing_lock = match["lock"] if match else None
            shown = repr(queueing_lock) if match else detail or str(exc)
            return AlreadyEnqueued(
                f"A job with this queueing lock is already waiting: {shown}",
                queueing_lock=queueing_lock,
            )
    transient = isinstance(exc, (pg_errors.OperationalError, pg_errors.InterfaceError))
    return connector_error(f"{type(exc).__name__}: ", exc, secrets, transient=transient)


def _rebalance(locks: Sequence[str]) -> Generator[Statement, list[Row], None]:
    """Pick the active job of each lock (call with the locks' advisory locks held)."""
    yield Statement("job_lock_rebalance_demote", {"locks": list(locks)})
    yield Statement("job_lock_rebalance_promote", {"locks": list(locks)})


def _jobs_document(jobs: Sequence[JobToDefer]) -> str:
    """The jobs as one JSON array, the parameter of ``job_defer_many``.

    One text parameter costs far less to send than seven arrays (psycopg
    dumps arrays element by element); the arguments, already JSON, are
    embedded as they are. A job without headers has no ``headers`` key (the
    column stays NULL), so the common job costs what it did before headers.
    """
    dumps = functools.lru_cache(maxsize=256)(_json.dumps)  # names repeat in a batch
    items = []
    for job in jobs:
        when = (
            "null" if job.scheduled_at is None else dumps(job.scheduled_at.isoformat())
        )
        headers = f',"headers":{_json.dumps(dict(job.headers))}' if job.headers else ""
        items.append(
            f'{{"queue_name":{dumps(job.queue)},"task_name":{dumps(job.task_name)},'
            f'"priority":{int(job.priority)},"lock":{dumps(job.lock)},'
            f'"queueing_lock":{dumps(job.queueing_lock)},"scheduled_at":{when},'
            f'"args":{job.args_json}{headers}}}'
        )
    return "[" + ",".join(items) + "]"


def _outcomes_document(
    outcomes: Sequence[JobOutcome], encode: _json.Encoder | None = None
) -> str:
    """The outcomes as one JSON array, the parameter of ``job_finish_many``.

    Only the fields that are set: a missing key reads as NULL, and most
    outcomes (a success) have four.
    """
    rows = []
    # The jobs of one claim share their started_at (the claim's now()), and
    # their outcomes mostly come in claim order: one isoformat per claim.
    last_started: datetime.datetime | None = None
    last_started_text = ""
    for o in outcomes:
        row: dict[str, Any] = {"id": o.job_id, "status": o.status.value}
        if o.result is not None and o.status is Status.SUCCEEDED:
            row["result"] = o.result
        error = o.error
        if error is not None:
            row["error_type"] = error.type
            row["error_message"] = error.message
            row["error_traceback"] = error.traceback
        if o.retry_at is not None:
            row["retry_at"] = o.retry_at.isoformat()
        if o.retry_priority is not None:
            row["retry_priority"] = o.retry_priority
        if o.retry_queue is not None:
            row["retry_queue"] = o.retry_queue
        if o.retry_lock is not None:
            row["retry_lock"] = o.retry_lock
        if o.delete_job:
            row["delete_job"] = True
        if o.worker_id is not None:
            row["worker_id"] = o.worker_id
        started_at = o.started_at
        if started_at is not None:
            if started_at != last_started:
                last_started, last_started_text = started_at, started_at.isoformat()
            row["started_at"] = last_started_text
        if o.recovered:
            row["recovered"] = True
        if o.released:
            row["released"] = True
        rows.append(row)
    return _json.dumps(rows, encode)


def job_defer_many(jobs: Sequence[JobToDefer]) -> Operation[list[int]]:
    locks = sorted({job.lock for job in jobs if job.lock is not None})
    if locks:
        yield BEGIN
        yield Statement("job_lock_acquire", {"locks": locks})
    rows = yield Statement("job_defer_many", {"jobs": _jobs_document(jobs)})
    if locks:
        yield from _rebalance(locks)
    return sorted(row["id"] for row in rows)


def job_get(job_id: int) -> Operation[Job | None]:
    jobs = _as_jobs((yield Statement("job_get", {"job_id": job_id}, jobs=True)))
    return jobs[0] if jobs else None


def job_list(filters: JobFilter) -> Operation[list[Job]]:
    params = attrs.asdict(filters)
    if filters.status is not None:
        params["status"] = filters.status.value
    jobs = _as_jobs((yield Statement("job_list", params, jobs=True)))
    return jobs


def job_cancel(params: CancelParams) -> Operation[bool]:
    yield BEGIN
    rows = yield Statement("job_get", {"job_id": params.job_id})
    if not rows:
        return False
    lock = rows[0]["lock"]
    if lock is not None:
        yield Statement("job_lock_acquire", {"locks": [lock]})
    rows = yield Statement("job_cancel", attrs.asdict(params))
    if not rows:
        return False
    cancelled: bool = rows[0]["cancelled"]
    if lock is not None and cancelled and rows[0]["was_todo"]:
        yield from _rebalance([lock])
    return cancelled


def job_abort_requested_many(job_ids: Sequence[int]) -> Operation[list[int]]:
    rows = yield Statement("job_abort_requested_many", {"job_ids": list(job_ids)})
    return [row["id"] for row in rows]


def parse_notification(payload: str) -> Notification | None:
    """Read a ``pa_events`` payload; None for one we do not understand (a newer
    version's), which is ignored rather than fatal."""
    try:
        data = _json.loads(payload)
        if data["t"] == "defer":
            queues = data.get("q")
            return Notification(
                kind="defer", queues=None if queues is None else tuple(queues)
            )
        if data["t"] == "abort":
            return Notification(kind="abort", job_id=int(data["j"]))
        if data["t"] == "finished":
            ids = data.get("j")
            return Notification(
                kind="finished",
                job_ids=None if ids is None else tuple(int(i) for i in ids),
            )
    except (ValueError, KeyError, TypeError):
        pass
    return None


def job_fetch_many(params: FetchParams) -> Operation[list[Job]]:
    if params.limits:
        return (yield from _job_fetch_limited(params))
    if params.queues is None:
        statement = Statement(
            "job_fetch_many",
            {"worker_id": params.worker_id, "limit": params.limit},
            jobs=True,
        )
    else:
        statement = Statement(
            "job_fetch_many_queues",
            {
                "worker_id": params.worker_id,
                "limit": params.limit,
                "queues": list(params.queues),
            },
            jobs=True,
        )
    jobs = _as_jobs((yield statement))
    jobs.sort(key=lambda job: (-job.priority, job.id))
    return jobs


def _job_fetch_limited(params: FetchParams) -> Operation[list[Job]]:
    """The claim under global limits, one statement (``pa_claim_limited``):
    serialised per limit with the other workers' claims, it reads each
    limit's room and the head of the line, picks there as ``_limits.pick``
    does, claims the picked jobs and records the starts of rate-limited ones."""
    rows = yield Statement(
        "job_fetch_limited",
        {
            "worker_id": params.worker_id,
            "limit": params.limit,
            "scan": look_ahead(params.limit),
            "queues": None if params.queues is None else list(params.queues),
            "limits": _json.dumps(
                [
                    {
                        "key": limit.key,
                        "scope": limit.scope,
                        "names": list(limit.names),
                        "concurrency": limit.concurrency,
                        "rate": None if limit.rate is None else limit.rate.count,
                        "period": None
                        if limit.rate is None
                        else limit.rate.period_seconds,
                    }
                    for limit in params.limits
                ]
            ),
        },
        jobs=True,
    )
    jobs = _as_jobs(rows)
    jobs.sort(key=lambda job: (-job.priority, job.id))
    return jobs


def job_finish_many(
    outcomes: Sequence[JobOutcome], encode: _json.Encoder | None = None
) -> Operation[list[int]]:
    retry_ids = [o.job_id for o in outcomes if o.status is Status.TODO]
    if retry_ids:
        rows = yield Statement("job_retry_conflicts", {"job_ids": retry_ids})
        outcomes = without_queueing_lock_conflicts(
            outcomes, {row["id"] for row in rows}
        )
    # A job that leaves "doing" frees its lock: the lock's next job becomes
    # active. A retry to another lock joins that lock's line.
    locks = sorted(
        {o.lock for o in outcomes if o.lock is not None}
        | {o.retry_lock for o in outcomes if o.retry_lock is not None}
    )
    if locks:
        yield BEGIN
        yield Statement("job_lock_acquire", {"locks": locks})
    rows = yield Statement(
        "job_finish_many", {"outcomes": _outcomes_document(outcomes, encode)}
    )
    if locks:
        yield from _rebalance(locks)
    refused: list[int] = rows[0]["refused"]
    return sorted(refused)


def job_retry(params: RetryParams) -> Operation[bool]:
    rows = yield Statement("job_get", {"job_id": params.job_id})
    if not rows:
        return False
    locks = sorted(
        {lock for lock in (rows[0]["lock"], params.lock) if lock is not None}
    )
    yield BEGIN
    if locks:
        yield Statement("job_lock_acquire", {"locks": locks})
    rows = yield Statement("job_retry", attrs.asdict(params))
    if rows and locks:
        yield from _rebalance(locks)
    return bool(rows)


def job_stats(group_by: str, filters: JobFilter) -> Operation[list[GroupStats]]:
    rows = yield Statement(
        "job_stats",
        {
            "group_by": group_by,
            "queue": filters.queue,
            "task_name": filters.task_name,
            "status": None if filters.status is None else filters.status.value,
            "lock": filters.lock,
            "limit": filters.limit,
        },
    )
    return [GroupStats(**row) for row in rows]


def job_delete_old(params: DeleteOldParams) -> Operation[int]:
    rows = yield Statement(
        "job_delete_old",
        {
            "statuses": [status.value for status in params.statuses],
            "older_than": params.older_than,
            "queue": params.queue,
        },
    )
    deleted: int = rows[0]["deleted"]
    return deleted


def _promote_due_locks() -> Generator[Statement, list[Row], int]:
    """Let jobs whose schedule just came due take their free lock."""
    rows = yield Statement("job_locks_due")
    locks = sorted(row["lock"] for row in rows)
    if locks:
        yield BEGIN
        yield Statement("job_lock_acquire", {"locks": locks})
        yield from _rebalance(locks)
    return len(locks)


def job_next_scheduled_at(
    queues: Sequence[str] | None,
) -> Operation[datetime.datetime | None]:
    yield from _promote_due_locks()
    rows = yield Statement(
        "job_next_scheduled_at", {"queues": None if queues is None else list(queues)}
    )
    due: datetime.datetime | None = rows[0]["next"]
    return due


def periodic_defer(params: PeriodicDeferParams) -> Operation[int | None]:
    key = {
        "task_name": params.job.task_name,
        "periodic_id": params.periodic_id,
        "defer_timestamp": params.defer_timestamp,
    }
    yield BEGIN
    rows = yield Statement("periodic_tick_claim", key)
    if not rows:
        return None
    (job_id,) = yield from job_defer_many([params.job])
    yield Statement(
        "periodic_tick_done", {**key, "job_id": job_id, "keep_after": params.keep_after}
    )
    return job_id


def job_wait_begin(job_id: int) -> Operation[int]:
    rows = yield Statement("job_wait_begin", {"job_id": job_id})
    waiter_id: int = rows[0]["id"]
    return waiter_id


def job_wait_end(waiter_id: int) -> Operation[None]:
    yield Statement("job_wait_end", {"waiter_id": waiter_id})


def job_list_stalled(stalled_worker_timeout: float) -> Operation[StalledJobs]:
    yield BEGIN
    rows = yield Statement("maintenance_try_lock")
    if not rows[0]["leader"]:
        return StalledJobs(leader=False)
    rows = yield Statement(
        "job_list_stalled", {"seconds": stalled_worker_timeout}, jobs=True
    )
    return StalledJobs(leader=True, jobs=tuple(_as_jobs(rows)))


def maintenance_run(params: MaintenanceParams) -> Operation[MaintenanceResult]:
    yield BEGIN
    rows = yield Statement("maintenance_try_lock")
    if not rows[0]["leader"]:
        return MaintenanceResult(leader=False)
    yield Statement("job_waiters_prune")
    yield Statement("job_limit_starts_prune")
    rows = yield Statement(
        "worker_prune_dead", {"seconds": params.stalled_worker_timeout}
    )
    promoted = yield from _promote_due_locks()
    return MaintenanceResult(
        leader=True, pruned_workers=rows[0]["pruned"], promoted_locks=promoted
    )


def worker_heartbeat(worker_id: int) -> Operation[bool]:
    rows = yield Statement("worker_heartbeat", {"worker_id": worker_id})
    return bool(rows)


def worker_register(
    name: str, queues: Sequence[str] | None, worker_id: int | None = None
) -> Operation[int]:
    params = {"name": name, "queues": None if queues is None else list(queues)}
    if worker_id is None:
        rows = yield Statement("worker_register", params)
    else:
        rows = yield Statement(
            "worker_register_again", {**params, "worker_id": worker_id}
        )
    new_id: int = rows[0]["id"]
    return new_id


def worker_unregister(worker_id: int) -> Operation[None]:
    yield Statement("worker_unregister", {"worker_id": worker_id})


def queue_list_paused() -> Operation[list[PausedQueue]]:
    rows = yield Statement("queue_list_paused")
    return [
        PausedQueue(name=row["queue_name"], paused_at=row["paused_at"]) for row in rows
    ]


def queue_pause(queue: str) -> Operation[bool]:
    rows = yield Statement("queue_pause", {"queue": queue})
    return bool(rows)


def queue_resume(queue: str) -> Operation[bool]:
    rows = yield Statement("queue_resume", {"queue": queue})
    return bool(rows)


def schema_applied_migrations() -> Operation[list[str] | None]:
    rows = yield Statement("schema_table_exists", {"name": "pa_schema_migrations"})
    if not rows[0]["exists"]:
        return None
    rows = yield Statement("schema_applied_migrations")
    return [row["name"] for row in rows]


def schema_apply(
    schema_sql: str, migrations: Sequence[tuple[str, str]]
) -> Operation[list[str]]:
    """Bring the schema up to date, in one transaction, one runner at a time.

    Args:
        schema_sql: the whole current schema, for an empty database.
        migrations: ``(name, sql)`` of every migration, in order.

    Returns:
        the names of the migrations applied now (all of them for an empty
        database, none for an up-to-date one).
    """
    yield BEGIN
    yield Statement("schema_lock")
    applied = yield from schema_applied_migrations()
    if applied is None:
        rows = yield Statement("schema_table_exists", {"name": "pa_jobs"})
        if rows[0]["exists"]:
            raise SchemaError(
                "pa_jobs exists but pa_schema_migrations does not: the schema was "
                "not created by procrastinate_anyio's migration runner"
            )
        yield Statement("schema.sql", script=schema_sql)
        missing = [name for name, _ in migrations]
    else:
        done = set(applied)
        missing = []
        for name, sql in migrations:
            if name not in done:
                yield Statement(name, script=sql)
                missing.append(name)
    if missing:
        yield Statement("schema_record_migrations", {"names": missing})
    return missing


def job_move_from_procrastinate(params: MoveParams) -> Operation[ProcrastinateMove]:
    """Move Procrastinate's waiting jobs and deferred periodic ticks into
    ours, in one transaction; the moved jobs are deleted from its table.

    Raises:
        MoveRefused: Procrastinate's tables or ours are missing, or its
            workers heartbeated recently (without ``force``).
        AlreadyEnqueued: a queueing lock was taken meanwhile (nothing written).
    """
    yield BEGIN
    (tables,) = yield Statement("procrastinate_move_tables")
    if not tables["pa_jobs"]:
        raise MoveRefused(
            "procrastinate_anyio's schema is missing: run "
            "`procrastinate-anyio schema --apply` first"
        )
    needed = (
        "procrastinate_jobs",
        "procrastinate_events",
        "procrastinate_periodic_defers",
    )
    missing = [name for name in needed if not tables[name]]
    if missing:
        raise MoveRefused(
            f"Procrastinate's tables are absent ({', '.join(missing)}): "
            "nothing to move (is the search_path Procrastinate's?)"
        )
    active = 0
    if tables["procrastinate_workers"]:  # Procrastinate 3.1 and later
        (row,) = yield Statement(
            "procrastinate_move_active_workers", {"seconds": params.worker_timeout}
        )
        active = row["active"]
        if active and not params.force:
            raise MoveRefused(
                f"{active} Procrastinate worker(s) heartbeated in the last "
                f"{params.worker_timeout:g} s: stop them first, or force the move "
                "(--force; their running jobs stay theirs)"
            )
    (row,) = yield Statement("procrastinate_move_doing")
    doing: int = row["doing"]
    candidates = yield Statement("procrastinate_move_candidates")
    queueing_locks = sorted(
        {row["queueing_lock"] for row in candidates if row["queueing_lock"] is not None}
    )
    taken: set[str] = set()
    if queueing_locks:
        rows = yield Statement(
            "procrastinate_move_queueing_locks_taken", {"locks": queueing_locks}
        )
        taken = {row["queueing_lock"] for row in rows}
    moving, skipped = plan_move(candidates, taken, set(row["locks"]))
    ids = [row["id"] for row in moving]
    scheduled = sum(1 for row in moving if row["future"])
    report = ProcrastinateMove(
        dry_run=params.dry_run,
        moved=tuple(ids),
        scheduled=scheduled,
        skipped=tuple(skipped),
        doing=doing,
        active_workers=active,
    )
    if params.dry_run:
        (row,) = yield Statement("procrastinate_move_periodic_count")
        return attrs.evolve(report, periodic_ticks=row["ticks"])
    new_ids: list[int] = []
    if ids:
        locks = sorted({row["lock"] for row in moving if row["lock"] is not None})
        if locks:
            yield Statement("job_lock_acquire", {"locks": locks})
        rows = yield Statement("procrastinate_move_jobs", {"ids": ids})
        new_ids = sorted(row["id"] for row in rows)
        if locks:
            yield from _rebalance(locks)
    ticks = yield Statement(
        "procrastinate_move_periodic", {"old_ids": ids, "new_ids": new_ids}
    )
    if ids:
        yield Statement("procrastinate_move_delete", {"ids": ids})
    return attrs.evolve(report, new_ids=tuple(new_ids), periodic_ticks=len(ticks))


def plan_move(
    candidates: Sequence[Row], taken_queueing_locks: set[str], doing_locks: set[str]
) -> tuple[list[Row], list[MoveSkip]]:
    """Which of Procrastinate's waiting jobs move, and why the others stay.

    A job stays when its queueing lock is taken by one of our waiting jobs
    (moved, it would be refused as a defer would), when its lock is held by
    one of Procrastinate's running jobs (moved, it could run beside it), or
    when our schema would refuse it (an empty name, arguments that are not
    an object).
    """
    moving: list[Row] = []
    skipped: list[MoveSkip] = []
    for row in candidates:
        if not row["valid"]:
            reason = "an empty queue or task name, or arguments that are not an object"
        elif row["queueing_lock"] in taken_queueing_locks:
            reason = (
                f"its queueing lock {row['queueing_lock']!r} is taken by a "
                "waiting job of ours"
            )
        elif row["lock"] in doing_locks:
            reason = f"its lock {row['lock']!r} is held by a running Procrastinate job"
        else:
            moving.append(row)
            continue
        skipped.append(MoveSkip(job_id=row["id"], reason=reason))
    return moving, skipped


def listen_probe(payload: str) -> Operation[None]:
    yield Statement("listen_probe", {"payload": payload})
