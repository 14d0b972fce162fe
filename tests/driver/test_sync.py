"""Conformance of the sync protocol (``SyncConnector``): every operation, on
``SyncPsycopgConnector`` and ``InMemorySyncConnector``.

Plain tests, without an event loop: the sync connector serves code that has
none. What the sync protocol cannot do (claim and finish jobs) goes through
the async connector on the same jobs.
"""

from __future__ import annotations

import datetime
import threading
from typing import TYPE_CHECKING, Any

import pytest

from procrastinate_anyio import AlreadyEnqueued, AppNotOpen, Status
from procrastinate_anyio._schema import SchemaManager, read_migrations
from procrastinate_anyio.connectors import (
    CancelParams,
    GroupStats,
    JobFilter,
    RetryParams,
)

from .conftest import HOUR, to_defer

if TYPE_CHECKING:
    from .conftest import SyncDriver, SyncJobFactory

WAIT_GUARD_SECONDS = 10
"""How long job_wait_finished may wait for a job that does finish."""


# ---------------------------------------------------------------- open/close


def test_open_close(sync_driver: SyncDriver) -> None:
    """is_open follows open() and close(); both are idempotent."""
    connector = sync_driver.connector
    states = [connector.is_open]
    for step in (connector.open, connector.close, connector.close, connector.open):
        step()
        states.append(connector.is_open)

    assert states == [True, True, False, False, True]
    assert connector.job_get(987_654) is None


def test_closed_connector_refuses_operations(sync_driver: SyncDriver) -> None:
    """A closed PostgreSQL connector raises AppNotOpen instead of running an
    operation. The in-memory one works open or not, on purpose (users' tests
    need no ``app.open()``; see "Coming from Procrastinate" and the
    InMemoryConnector docs): the one documented difference."""
    sync_driver.connector.close()
    if sync_driver.name == "memory":
        assert sync_driver.connector.job_get(1) is None
        return

    with pytest.raises(AppNotOpen):
        sync_driver.connector.job_get(1)
    with pytest.raises(AppNotOpen):
        sync_driver.connector.job_defer_many([to_defer()])
    with pytest.raises(AppNotOpen):
        sync_driver.connector.job_wait_finished(1, timeout=0)


# ---------------------------------------------------------------- defer/get


def test_defer_many_and_get(sync_driver: SyncDriver) -> None:
    """Deferred jobs get increasing ids in input order and read back as given."""
    at = datetime.datetime(2030, 1, 31, 12, tzinfo=datetime.timezone.utc)
    ids = sync_driver.connector.job_defer_many(
        [
            to_defer(),
            to_defer(
                queue="q",
                task_name="t",
                args={"a": [1, "x"]},
                priority=7,
                lock="L",
                queueing_lock="QL",
                scheduled_at=at,
            ),
        ]
    )

    assert ids == sorted(ids)
    assert len(set(ids)) == 2
    job = sync_driver.connector.job_get(ids[1])
    assert job is not None
    assert (job.id, job.queue, job.task_name, job.task_kwargs) == (
        ids[1],
        "q",
        "t",
        {"a": [1, "x"]},
    )
    assert (job.priority, job.lock, job.queueing_lock) == (7, "L", "QL")
    assert (job.status, job.attempts, job.scheduled_at) == (Status.TODO, 0, at)


def test_defer_many_empty(sync_driver: SyncDriver) -> None:
    """Deferring no job writes nothing and returns no id."""
    assert sync_driver.connector.job_defer_many([]) == []
    assert sync_driver.connector.job_list(JobFilter()) == []


@pytest.mark.parametrize(
    "batch",
    [
        pytest.param([to_defer(queueing_lock="QL")], id="taken-by-a-todo-job"),
        pytest.param(
            [to_defer(), to_defer(queueing_lock="QL2"), to_defer(queueing_lock="QL2")],
            id="twice-in-the-batch",
        ),
    ],
)
def test_defer_many_queueing_lock_all_or_none(
    sync_driver: SyncDriver, sync_jobs: SyncJobFactory, batch: list[Any]
) -> None:
    """A queueing lock conflict raises AlreadyEnqueued and writes no job."""
    first = sync_jobs.defer(queueing_lock="QL")

    with pytest.raises(AlreadyEnqueued) as exc_info:
        sync_driver.connector.job_defer_many(batch)

    assert exc_info.value.queueing_lock in {"QL", "QL2"}
    assert [job.id for job in sync_driver.connector.job_list(JobFilter())] == [first]


def test_get_unknown(sync_driver: SyncDriver) -> None:
    """Getting a job that does not exist returns None."""
    assert sync_driver.connector.job_get(987_654) is None


# ---------------------------------------------------------------- list/stats


@pytest.fixture
def sample(sync_jobs: SyncJobFactory) -> dict[str, int]:
    """Five jobs that differ in one field each; ``doing`` is claimed by worker 1."""
    ids = {
        "plain": sync_jobs.defer(),
        "doing": sync_jobs.defer(queue="busy"),
        "queue": sync_jobs.defer(queue="other"),
        "task": sync_jobs.defer(task_name="special"),
        "locks": sync_jobs.defer(lock="L", queueing_lock="QL"),
    }
    assert sync_jobs.fetch(queues=["busy"]) == [ids["doing"]]
    return ids


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param({}, ["plain", "doing", "queue", "task", "locks"], id="all"),
        pytest.param({"id": -1}, [], id="unknown-id"),
        pytest.param({"queue": "other"}, ["queue"], id="queue"),
        pytest.param({"task_name": "special"}, ["task"], id="task"),
        pytest.param({"status": Status.DOING}, ["doing"], id="status"),
        pytest.param({"lock": "L"}, ["locks"], id="lock"),
        pytest.param({"queueing_lock": "QL"}, ["locks"], id="queueing-lock"),
        pytest.param({"worker_id": 1}, ["doing"], id="worker"),
        pytest.param({"limit": 2}, ["plain", "doing"], id="limit"),
        pytest.param({"status": Status.FAILED}, [], id="no-match"),
    ],
)
def test_list(
    sync_driver: SyncDriver,
    sample: dict[str, int],
    filters: dict[str, Any],
    expected: list[str],
) -> None:
    """Jobs matching every given filter, by id, at most ``limit``."""
    found = sync_driver.connector.job_list(JobFilter(**filters))

    assert [job.id for job in found] == [sample[name] for name in expected]


def test_list_by_id(sync_driver: SyncDriver, sample: dict[str, int]) -> None:
    """Listing by id gives that job, as ``job_get`` reads it."""
    (job,) = sync_driver.connector.job_list(JobFilter(id=sample["task"]))

    assert job == sync_driver.connector.job_get(sample["task"])


@pytest.mark.parametrize(
    ("group_by", "filters", "expected"),
    [
        pytest.param(
            "queue",
            {},
            [
                GroupStats(name="busy", jobs_count=1, doing=1),
                GroupStats(name="default", jobs_count=3, todo=3),
                GroupStats(name="other", jobs_count=1, todo=1),
            ],
            id="queue",
        ),
        pytest.param(
            "task",
            {"status": Status.TODO},
            [
                GroupStats(name="special", jobs_count=1, todo=1),
                GroupStats(name="task", jobs_count=3, todo=3),
            ],
            id="task-todo",
        ),
        pytest.param(
            "lock", {}, [GroupStats(name="L", jobs_count=1, todo=1)], id="lock"
        ),
        pytest.param(
            "queue",
            {"limit": 1},
            [GroupStats(name="busy", jobs_count=1, doing=1)],
            id="limit",
        ),
    ],
)
def test_stats(
    sync_driver: SyncDriver,
    sample: dict[str, int],
    group_by: Any,
    filters: dict[str, Any],
    expected: list[GroupStats],
) -> None:
    """Counts by status per group, groups by name; jobs without one are left out."""
    assert sync_driver.connector.job_stats(group_by, JobFilter(**filters)) == expected


def test_stats_empty(sync_driver: SyncDriver) -> None:
    """Without jobs there is no group."""
    assert sync_driver.connector.job_stats("queue", JobFilter()) == []


# ---------------------------------------------------------------- cancel


@pytest.mark.parametrize(
    ("abort", "delete_job"),
    [
        pytest.param(False, False, id="plain"),
        pytest.param(True, False, id="abort"),
        pytest.param(False, True, id="delete"),
    ],
)
def test_cancel_todo(
    sync_driver: SyncDriver, sync_jobs: SyncJobFactory, abort: bool, delete_job: bool
) -> None:
    """A todo job is cancelled (or deleted); its finish time is set."""
    job_id = sync_jobs.defer()
    params = CancelParams(job_id=job_id, abort=abort, delete_job=delete_job)

    assert sync_driver.connector.job_cancel(params) is True

    job = sync_driver.connector.job_get(job_id)
    if delete_job:
        assert job is None
        return
    assert job is not None
    assert job.status is Status.CANCELLED
    assert job.finished_at is not None
    assert not job.abort_requested


def test_cancel_doing(sync_driver: SyncDriver, sync_jobs: SyncJobFactory) -> None:
    """A running job is only asked to abort, and only with ``abort``."""
    job_id = sync_jobs.defer()
    assert sync_jobs.fetch() == [job_id]

    assert sync_driver.connector.job_cancel(CancelParams(job_id=job_id)) is False
    assert not sync_jobs.get(job_id).abort_requested

    assert sync_driver.connector.job_cancel(CancelParams(job_id=job_id, abort=True))
    job = sync_jobs.get(job_id)
    assert (job.status, job.abort_requested) == (Status.DOING, True)


def test_cancel_finished_or_unknown(
    sync_driver: SyncDriver, sync_jobs: SyncJobFactory
) -> None:
    """A finished job or a missing one is not cancelled."""
    job_id = sync_jobs.defer()
    sync_jobs.run(job_id)
    connector = sync_driver.connector

    assert connector.job_cancel(CancelParams(job_id=job_id, abort=True)) is False
    assert connector.job_cancel(CancelParams(job_id=987_654, abort=True)) is False
    assert sync_jobs.statuses(job_id) == [Status.SUCCEEDED]


def test_cancel_frees_the_queueing_lock(
    sync_driver: SyncDriver, sync_jobs: SyncJobFactory
) -> None:
    """Once its todo job is cancelled, a queueing lock can be taken again."""
    first = sync_jobs.defer(queueing_lock="QL")
    assert sync_driver.connector.job_cancel(CancelParams(job_id=first))

    second = sync_jobs.defer(queueing_lock="QL")

    assert sync_jobs.statuses(first, second) == [Status.CANCELLED, Status.TODO]


# ---------------------------------------------------------------- retry


@pytest.mark.parametrize(
    "status",
    [
        pytest.param(Status.FAILED, id="failed"),
        pytest.param(Status.ABORTED, id="aborted"),
        pytest.param(Status.CANCELLED, id="cancelled"),
    ],
)
def test_retry(
    sync_driver: SyncDriver, sync_jobs: SyncJobFactory, status: Status
) -> None:
    """A failed, aborted or cancelled job goes back to todo, elsewhere if asked."""
    job_id = sync_jobs.defer(lock="L", priority=1)
    if status is Status.CANCELLED:
        assert sync_driver.connector.job_cancel(CancelParams(job_id=job_id))
    else:
        sync_jobs.run(job_id, status)
    retry_at = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)

    assert sync_driver.connector.job_retry(
        RetryParams(
            job_id=job_id, retry_at=retry_at, priority=5, queue="again", lock="M"
        )
    )

    job = sync_jobs.get(job_id)
    assert (job.status, job.finished_at, job.abort_requested) == (
        Status.TODO,
        None,
        False,
    )
    assert (job.scheduled_at, job.priority, job.queue, job.lock) == (
        retry_at,
        5,
        "again",
        "M",
    )


def test_retry_keeps_what_is_not_given(
    sync_driver: SyncDriver, sync_jobs: SyncJobFactory
) -> None:
    """Without new values, a retried job keeps its queue, priority and lock,
    and is ready at once (due now: ``scheduled_at`` is when it was retried)."""
    job_id = sync_jobs.defer(queue="q", lock="L", priority=3)
    assert sync_jobs.fetch() == [job_id]
    sync_jobs.finish(job_id, Status.FAILED)

    assert sync_driver.connector.job_retry(RetryParams(job_id=job_id))

    job = sync_jobs.get(job_id)
    assert (job.status, job.queue, job.priority, job.lock) == (
        Status.TODO,
        "q",
        3,
        "L",
    )
    assert job.scheduled_at is not None
    assert job.finished_at is None
    assert sync_jobs.fetch() == [job_id]


def test_retry_refused(sync_driver: SyncDriver, sync_jobs: SyncJobFactory) -> None:
    """A todo, doing, succeeded or missing job is not retried."""
    succeeded = sync_jobs.defer()
    sync_jobs.run(succeeded)
    doing = sync_jobs.defer()
    assert sync_jobs.fetch() == [doing]
    todo = sync_jobs.defer()
    connector = sync_driver.connector

    assert connector.job_retry(RetryParams(job_id=succeeded)) is False
    assert connector.job_retry(RetryParams(job_id=doing)) is False
    assert connector.job_retry(RetryParams(job_id=todo)) is False
    assert connector.job_retry(RetryParams(job_id=987_654)) is False
    assert sync_jobs.statuses(todo, doing, succeeded) == [
        Status.TODO,
        Status.DOING,
        Status.SUCCEEDED,
    ]


def test_retry_queueing_lock_taken(
    sync_driver: SyncDriver, sync_jobs: SyncJobFactory
) -> None:
    """A job whose queueing lock is held by a waiting job is not retried."""
    cancelled = sync_jobs.defer(queueing_lock="QL")
    assert sync_driver.connector.job_cancel(CancelParams(job_id=cancelled))
    waiting = sync_jobs.defer(queueing_lock="QL")

    with pytest.raises(AlreadyEnqueued):
        sync_driver.connector.job_retry(RetryParams(job_id=cancelled))

    assert sync_jobs.statuses(cancelled, waiting) == [Status.CANCELLED, Status.TODO]


# ---------------------------------------------------------------- wait


def test_wait_finished_already_final(
    sync_driver: SyncDriver, sync_jobs: SyncJobFactory
) -> None:
    """A finished job is returned at once, whatever the timeout."""
    job_id = sync_jobs.defer()
    sync_jobs.run(job_id, Status.FAILED)

    job = sync_driver.connector.job_wait_finished(job_id, timeout=None)

    assert job == sync_jobs.get(job_id)
    assert job is not None
    assert job.status is Status.FAILED


def test_wait_finished_unknown(sync_driver: SyncDriver) -> None:
    """Waiting for a job that does not exist returns None."""
    assert sync_driver.connector.job_wait_finished(987_654, timeout=None) is None


@pytest.mark.parametrize(
    "timeout", [pytest.param(0, id="0"), pytest.param(0.05, id="50ms")]
)
def test_wait_finished_timeout(
    sync_driver: SyncDriver, sync_jobs: SyncJobFactory, timeout: float
) -> None:
    """On timeout, the job is returned as it is, not finished."""
    job_id = sync_jobs.defer()

    job = sync_driver.connector.job_wait_finished(job_id, timeout=timeout)

    assert job == sync_jobs.get(job_id)
    assert job is not None
    assert job.status is Status.TODO


def test_wait_finished_woken(
    sync_driver: SyncDriver, sync_jobs: SyncJobFactory
) -> None:
    """A job finished by another thread ends the wait with its final state
    (the other thread may finish it before or during the wait)."""
    job_id = sync_jobs.defer()
    assert sync_jobs.fetch() == [job_id]
    finisher = threading.Thread(target=sync_jobs.finish, args=(job_id,))

    finisher.start()
    try:
        job = sync_driver.connector.job_wait_finished(
            job_id, timeout=WAIT_GUARD_SECONDS
        )
    finally:
        finisher.join()

    assert job is not None
    assert job.status is Status.SUCCEEDED
    assert job == sync_jobs.get(job_id)


# ---------------------------------------------------------------- schema


def migration_names() -> list[str]:
    return [name for name, _ in read_migrations()]


def test_schema_applied(sync_driver: SyncDriver) -> None:
    """Storage with the schema lists every migration of this version."""
    assert sync_driver.connector.schema_applied_migrations() == migration_names()


def test_schema_missing(bare_sync_driver: SyncDriver) -> None:
    """Storage without the schema has no applied migration list."""
    assert bare_sync_driver.connector.schema_applied_migrations() is None


def test_schema_apply_on_empty_storage(bare_sync_driver: SyncDriver) -> None:
    """The schema goes in whole; it counts as every migration of this version."""
    connector = bare_sync_driver.connector

    applied = connector.schema_apply(SchemaManager.get_schema(), read_migrations())

    assert applied == migration_names()
    assert connector.schema_applied_migrations() == migration_names()
    assert connector.job_defer_many([to_defer()]) != []


def test_schema_apply_idempotent(
    sync_driver: SyncDriver, sync_jobs: SyncJobFactory
) -> None:
    """Applying an up-to-date schema applies nothing and keeps the jobs."""
    job_id = sync_jobs.defer(
        scheduled_at=datetime.datetime.now(datetime.timezone.utc) + HOUR
    )
    connector = sync_driver.connector

    assert connector.schema_apply(SchemaManager.get_schema(), read_migrations()) == []

    assert connector.schema_applied_migrations() == migration_names()
    assert sync_jobs.statuses(job_id) == [Status.TODO]


def test_schema_apply_missing(sync_driver: SyncDriver) -> None:
    """Only the missing migrations are applied, and listed by name afterwards."""
    extra = [
        ("9.0.0_01_pre_extra.sql", "CREATE TABLE pa_test_extra_a (id int);"),
        ("10.0.0_01_pre_extra.sql", "CREATE TABLE pa_test_extra_b (id int);"),
    ]
    migrations = [*read_migrations(), *extra]
    connector = sync_driver.connector

    applied = connector.schema_apply(SchemaManager.get_schema(), migrations)

    assert applied == [name for name, _ in extra]
    assert connector.schema_applied_migrations() == sorted(
        [*migration_names(), *applied]
    )
    assert connector.schema_apply(SchemaManager.get_schema(), migrations) == []


def test_cancel_lets_the_next_job_of_its_lock_run(
    sync_driver: SyncDriver, sync_jobs: SyncJobFactory
) -> None:
    """Cancelling the first todo job of a lock makes the next one ready."""
    first = sync_jobs.defer(lock="L")
    second = sync_jobs.defer(lock="L")
    assert sync_driver.connector.job_cancel(CancelParams(job_id=first))

    assert sync_jobs.fetch() == [second]


def test_abort_requested_twice(
    sync_driver: SyncDriver, sync_jobs: SyncJobFactory
) -> None:
    """Asking a running job to abort again still reports the request."""
    job_id = sync_jobs.defer()
    assert sync_jobs.fetch() == [job_id]
    params = CancelParams(job_id=job_id, abort=True, delete_job=True)

    assert sync_driver.connector.job_cancel(params) is True
    assert sync_driver.connector.job_cancel(params) is True
    assert sync_jobs.get(job_id).abort_requested
