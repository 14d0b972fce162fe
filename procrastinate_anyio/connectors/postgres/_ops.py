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
from collections.abc import Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

import attrs
from psycopg import errors as pg_errors
from psycopg import pq

from ... import _json
from ..._exceptions import AlreadyEnqueued, SchemaError
from ..._job import NO_HEADERS, Job, JobError, JobToDefer, Status
from ..._limits import look_ahead, pick, room
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
    Notification,
    PausedQueue,
    PeriodicDeferParams,
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


def job_from_row(row: Row) -> Job:
    """Build a :class:`Job` from a ``pa_jobs`` row."""
    error = None
    if row["error_type"] is not None:
        error = JobError(
            type=row["error_type"],
            message=row["error_message"] or "",
            traceback=row["error_traceback"],
        )
    return Job(
        id=row["id"],
        queue=row["queue_name"],
        task_name=row["task_name"],
        task_kwargs=row["args"],
        priority=row["priority"],
        lock=row["lock"],
        queueing_lock=row["queueing_lock"],
        status=Status(row["status"]),
        scheduled_at=row["scheduled_at"],
        attempts=row["attempts"],
        abort_requested=row["abort_requested"],
        worker_id=row["worker_id"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        result=row["result"],
        error=error,
        recoveries=row["recoveries"],
        # Read-only, like every field of a Job.
        headers=types.MappingProxyType(row["headers"])
        if row["headers"]
        else NO_HEADERS,
    )


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
    """The outcomes as one JSON array, the parameter of ``job_finish_many``."""
    rows = []
    for o in outcomes:
        error = o.error
        rows.append(
            {
                "id": o.job_id,
                "status": o.status.value,
                "result": o.result if o.status is Status.SUCCEEDED else None,
                "error_type": None if error is None else error.type,
                "error_message": None if error is None else error.message,
                "error_traceback": None if error is None else error.traceback,
                "retry_at": None if o.retry_at is None else o.retry_at.isoformat(),
                "retry_priority": o.retry_priority,
                "retry_queue": o.retry_queue,
                "retry_lock": o.retry_lock,
                "delete_job": o.delete_job,
                "worker_id": o.worker_id,
                "started_at": None
                if o.started_at is None
                else o.started_at.isoformat(),
                "recovered": o.recovered,
            }
        )
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
    rows = yield Statement("job_get", {"job_id": job_id})
    return job_from_row(rows[0]) if rows else None


def job_list(filters: JobFilter) -> Operation[list[Job]]:
    params = attrs.asdict(filters)
    if filters.status is not None:
        params["status"] = filters.status.value
    rows = yield Statement("job_list", params)
    return [job_from_row(row) for row in rows]


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
            "job_fetch_many", {"worker_id": params.worker_id, "limit": params.limit}
        )
    else:
        statement = Statement(
            "job_fetch_many_queues",
            {
                "worker_id": params.worker_id,
                "limit": params.limit,
                "queues": list(params.queues),
            },
        )
    rows = yield statement
    jobs = [job_from_row(row) for row in rows]
    jobs.sort(key=lambda job: (-job.priority, job.id))
    return jobs


def _job_fetch_limited(params: FetchParams) -> Operation[list[Job]]:
    """The claim under global limits: serialised per limit with the other
    workers' claims, it reads each limit's room and the head of the line,
    picks there (``_limits.pick``), claims the picked jobs and records the
    starts of rate-limited ones, in one transaction."""
    limits = params.limits
    yield BEGIN
    yield Statement("job_limits_lock", {"keys": [limit.key for limit in limits]})
    rows = yield Statement(
        "job_limits_usage",
        {
            "limits": _json.dumps(
                [
                    {
                        "key": limit.key,
                        "scope": limit.scope,
                        "names": list(limit.names),
                        "concurrency": limit.concurrency is not None,
                        "period": None
                        if limit.rate is None
                        else limit.rate.period_seconds,
                    }
                    for limit in limits
                ]
            )
        },
    )
    free = room(
        limits,
        {row["key"]: row["doing"] or 0 for row in rows},
        {row["key"]: row["started"] or 0 for row in rows},
    )
    candidates = yield Statement(
        "job_fetch_limited",
        {
            "queues": None if params.queues is None else list(params.queues),
            "scan": look_ahead(params.limit),
        },
    )
    candidates = sorted(candidates, key=lambda row: (-row["priority"], row["id"]))
    picked, starts = pick(
        candidates,
        limits,
        free,
        params.limit,
        where=lambda row: (row["task_name"], row["queue_name"]),
    )
    if not picked:
        return []
    rows = yield Statement(
        "job_claim_ids",
        {"ids": [row["id"] for row in picked], "worker_id": params.worker_id},
    )
    if starts:
        yield Statement("job_limit_starts_record", {"keys": starts})
    jobs = [job_from_row(row) for row in rows]
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
    rows = yield Statement("job_list_stalled", {"seconds": stalled_worker_timeout})
    return StalledJobs(leader=True, jobs=tuple(job_from_row(row) for row in rows))


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


def listen_probe(payload: str) -> Operation[None]:
    yield Statement("listen_probe", {"payload": payload})
