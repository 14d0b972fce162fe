"""Tests of how the PostgreSQL connector reads ``pa_jobs`` rows."""

from __future__ import annotations

import datetime
import types
from typing import Any

from procrastinate_anyio import Job, JobError, Status
from procrastinate_anyio._job import NO_HEADERS
from procrastinate_anyio.connectors.postgres._ops import _JOB_COLUMNS, job_rows

WHEN = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)


class Column:
    def __init__(self, name: str) -> None:
        self.name = name


class Cursor:
    """What job_rows reads of a psycopg cursor: its description."""

    def __init__(self, names: list[str]) -> None:
        self.description = [Column(name) for name in names]


VALUES: dict[str, Any] = {
    "id": 7,
    "queue_name": "emails",
    "task_name": "send",
    "args": {"to": "a@b.c"},
    "priority": 3,
    "lock": "user-1",
    "queueing_lock": "send-1",
    "status": "failed",
    "scheduled_at": WHEN,
    "attempts": 2,
    "abort_requested": False,
    "worker_id": 4,
    "created_at": WHEN,
    "started_at": WHEN,
    "finished_at": WHEN,
    "result": None,
    "error_type": "ValueError",
    "error_message": None,
    "error_traceback": "Traceback...",
    "recoveries": 1,
    "headers": {"trace": "t"},
    "lock_waiting": False,  # a column a Job does not have
}


def test_columns_are_found_by_name_in_any_order() -> None:
    """A row of a table whose columns come in another order (a column added
    by a migration goes last), with a column a Job does not hold, reads into
    the same Job."""
    names = ["lock_waiting", *reversed(_JOB_COLUMNS)]
    job = job_rows(Cursor(names))([VALUES[name] for name in names])
    assert job == Job(
        id=7,
        queue="emails",
        task_name="send",
        task_kwargs={"to": "a@b.c"},
        priority=3,
        lock="user-1",
        queueing_lock="send-1",
        status=Status.FAILED,
        scheduled_at=WHEN,
        attempts=2,
        abort_requested=False,
        worker_id=4,
        created_at=WHEN,
        started_at=WHEN,
        finished_at=WHEN,
        result=None,
        error=JobError(type="ValueError", message="", traceback="Traceback..."),
        recoveries=1,
        headers=types.MappingProxyType({"trace": "t"}),
    )
    assert isinstance(job.headers, types.MappingProxyType)  # read-only


def test_no_error_and_no_headers() -> None:
    """Without an error type there is no error; without headers, the shared
    empty mapping."""
    names = list(_JOB_COLUMNS)
    values = {**VALUES, "error_type": None, "headers": None, "status": "todo"}
    job = job_rows(Cursor(names))([values[name] for name in names])
    assert (job.error, job.headers, job.status) == (None, NO_HEADERS, Status.TODO)
