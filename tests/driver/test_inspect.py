"""Conformance: ``job_get``, ``job_list``, worker rows and schema operations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from procrastinate_anyio import Status
from procrastinate_anyio._schema import SchemaManager, read_migrations
from procrastinate_anyio.connectors import JobFilter

if TYPE_CHECKING:
    from procrastinate_anyio.connectors import AsyncConnector

    from .conftest import JobFactory

pytestmark = pytest.mark.anyio


@pytest.fixture
async def sample(jobs: JobFactory) -> dict[str, int]:
    """Five jobs that differ in one field each; ``doing`` is claimed by worker 1."""
    ids = {
        "plain": await jobs.defer(),
        "doing": await jobs.defer(queue="busy"),
        "queue": await jobs.defer(queue="other"),
        "task": await jobs.defer(task_name="special"),
        "locks": await jobs.defer(lock="L", queueing_lock="QL"),
    }
    assert await jobs.fetch(queues=["busy"]) == [ids["doing"]]
    return ids


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param({}, ["plain", "doing", "queue", "task", "locks"], id="all"),
        pytest.param({"queue": "other"}, ["queue"], id="queue"),
        pytest.param({"task_name": "special"}, ["task"], id="task"),
        pytest.param({"status": Status.DOING}, ["doing"], id="status"),
        pytest.param({"lock": "L"}, ["locks"], id="lock"),
        pytest.param({"queueing_lock": "QL"}, ["locks"], id="queueing-lock"),
        pytest.param({"worker_id": 1}, ["doing"], id="worker"),
        pytest.param(
            {"status": Status.TODO, "queue": "default"},
            ["plain", "task", "locks"],
            id="combined",
        ),
        pytest.param({"queue": "other", "task_name": "special"}, [], id="disjoint"),
        pytest.param({"limit": 2}, ["plain", "doing"], id="limit"),
        pytest.param(
            {"limit": None}, ["plain", "doing", "queue", "task", "locks"], id="no-limit"
        ),
        pytest.param({"status": Status.FAILED}, [], id="no-match"),
    ],
)
async def test_list(
    connector: AsyncConnector,
    sample: dict[str, int],
    filters: dict[str, Any],
    expected: list[str],
) -> None:
    """Jobs matching every given filter, by id, at most ``limit``."""
    found = await connector.job_list(JobFilter(**filters))

    assert [job.id for job in found] == [sample[name] for name in expected]


async def test_list_by_id(connector: AsyncConnector, sample: dict[str, int]) -> None:
    """Listing by id gives that job, as ``job_get`` reads it."""
    (job,) = await connector.job_list(JobFilter(id=sample["task"]))

    assert job == await connector.job_get(sample["task"])
    assert await connector.job_list(JobFilter(id=987_654)) == []


async def test_get_unknown(connector: AsyncConnector) -> None:
    """Getting a job that does not exist returns None."""
    assert await connector.job_get(987_654) is None


async def test_worker_lifecycle(connector: AsyncConnector) -> None:
    """A registered worker beats until it unregisters; ids are distinct."""
    first = await connector.worker_register("w1", ["a", "b"])
    second = await connector.worker_register("w2", None)
    assert first != second

    assert await connector.worker_heartbeat(first) is True
    await connector.worker_unregister(first)

    assert await connector.worker_heartbeat(first) is False
    assert await connector.worker_heartbeat(second) is True


async def test_worker_unknown(connector: AsyncConnector) -> None:
    """A heartbeat of an unknown worker returns False; unregistering it is a no-op."""
    assert await connector.worker_heartbeat(555_555) is False
    await connector.worker_unregister(555_555)


async def test_worker_register_again(connector: AsyncConnector) -> None:
    """A pruned worker registers again under its own id."""
    worker_id = await connector.worker_register("w", None)
    await connector.worker_unregister(worker_id)

    assert await connector.worker_register("w", None, worker_id) == worker_id
    assert await connector.worker_heartbeat(worker_id) is True
    assert await connector.worker_register("w", None, worker_id) == worker_id


def migration_names() -> list[str]:
    return [name for name, _ in read_migrations()]


async def test_schema_applied(connector: AsyncConnector) -> None:
    """A database with the schema lists every migration of this version."""
    assert await connector.schema_applied_migrations() == migration_names()


async def test_schema_apply_idempotent(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """Applying an up-to-date schema applies nothing and keeps the jobs."""
    job_id = await jobs.defer()

    assert (
        await connector.schema_apply(SchemaManager.get_schema(), read_migrations())
        == []
    )

    assert await connector.schema_applied_migrations() == migration_names()
    assert await jobs.statuses(job_id) == [Status.TODO]


async def test_schema_apply_missing(connector: AsyncConnector) -> None:
    """Only the missing migrations are applied, and listed by name afterwards."""
    extra = [
        ("9.0.0_01_pre_extra.sql", "CREATE TABLE pa_test_extra_a (id int);"),
        ("10.0.0_01_pre_extra.sql", "CREATE TABLE pa_test_extra_b (id int);"),
    ]
    migrations = [*read_migrations(), *extra]

    applied = await connector.schema_apply(SchemaManager.get_schema(), migrations)

    assert applied == [name for name, _ in extra]
    assert await connector.schema_applied_migrations() == sorted(
        [*migration_names(), *applied]
    )
    assert await connector.schema_apply(SchemaManager.get_schema(), migrations) == []
