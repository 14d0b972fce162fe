"""Fixtures of the driver conformance suite.

Every test of this folder runs against the in-memory connector and the
PostgreSQL connector, on asyncio and on trio: where the two connectors
differ, a test fails (River's ``riverdrivertest``).

Time: the in-memory connector reads an injected clock; PostgreSQL reads real
time. Tests schedule jobs far from now (an hour ahead, a second behind), so
no test depends on how long it takes. To let time pass, a test calls
``driver.travel(delta)``: the in-memory clock moves forward, and on
PostgreSQL every ``scheduled_at`` moves back by ``delta``, which is the same
thing for every rule that compares a schedule with ``now()``.

The sync protocol has its own fixtures (``sync_driver``, ``sync_jobs``):
``SyncPsycopgConnector`` and ``InMemorySyncConnector``, each paired with an
async connector on the same jobs, in plain tests without an event loop.
"""

from __future__ import annotations

import contextlib
import datetime
import json
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import attrs
import pytest

from procrastinate_anyio import (
    InMemoryConnector,
    Job,
    JobError,
    PsycopgConnector,
    Status,
    SyncPsycopgConnector,
)
from procrastinate_anyio._job import JobToDefer
from procrastinate_anyio._schema import SchemaManager, read_migrations
from procrastinate_anyio.connectors import (
    AsyncConnector,
    FetchParams,
    JobOutcome,
    SyncConnector,
)
from procrastinate_anyio.connectors.postgres import connect
from tests.support import FakeClock, utcnow

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

    from tests.conftest import DatabaseFactory

T = TypeVar("T")

WORKER_ID = 1
"""The worker that fetches in tests (jobs do not reference a worker row)."""

HOUR = datetime.timedelta(hours=1)


@attrs.define
class Driver:
    """A connector under test, and how to make time pass for it."""

    name: str
    connector: AsyncConnector
    now: Callable[[], datetime.datetime]
    travel: Callable[[datetime.timedelta], Awaitable[None]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def memory_connector(clock: FakeClock) -> AsyncIterator[InMemoryConnector]:
    """An open in-memory connector on ``clock``, with the schema applied."""
    connector = InMemoryConnector(clock=clock)
    await connector.open_async()
    await connector.schema_apply(SchemaManager.get_schema(), read_migrations())
    yield connector
    await connector.close_async()


@pytest.fixture(
    params=[
        pytest.param("memory", id="memory"),
        pytest.param("postgres", id="postgres"),
    ]
)
def driver(request: pytest.FixtureRequest) -> Driver:
    """The connector under test, with the schema applied.

    A sync fixture: it picks an async fixture by name, which pytest can only
    do outside the event loop.
    """
    if request.param == "memory":
        clock: FakeClock = request.getfixturevalue("clock")

        async def travel_memory(delta: datetime.timedelta) -> None:
            clock.now += delta

        return Driver(
            "memory", request.getfixturevalue("memory_connector"), clock, travel_memory
        )

    dsn: str = request.getfixturevalue("pg_dsn")

    async def travel_postgres(delta: datetime.timedelta) -> None:
        async with await connect(dsn) as conn:
            await conn.execute(
                "UPDATE pa_jobs SET scheduled_at = scheduled_at - %s", (delta,)
            )

    return Driver(
        "postgres", request.getfixturevalue("pg_connector"), utcnow, travel_postgres
    )


@pytest.fixture
def connector(driver: Driver) -> AsyncConnector:
    """The connector under test (the ``driver`` fixture, without the clock)."""
    return driver.connector


def to_defer(
    *,
    queue: str = "default",
    task_name: str = "task",
    args: dict[str, Any] | None = None,
    priority: int = 0,
    lock: str | None = None,
    queueing_lock: str | None = None,
    scheduled_at: datetime.datetime | None = None,
    headers: dict[str, str] | None = None,
) -> JobToDefer:
    """A job to defer, with defaults for everything."""
    return JobToDefer(
        queue=queue,
        task_name=task_name,
        args_json=json.dumps(args or {}),
        priority=priority,
        lock=lock,
        queueing_lock=queueing_lock,
        scheduled_at=scheduled_at,
        **({} if headers is None else {"headers": headers}),
    )


@attrs.define
class JobFactory:
    """Makes and moves jobs through the connector's own operations."""

    connector: AsyncConnector

    async def defer(self, **options: Any) -> int:
        """Defer one job (options of :func:`to_defer`); returns its id."""
        (job_id,) = await self.connector.job_defer_many([to_defer(**options)])
        return job_id

    async def get(self, job_id: int) -> Job:
        job = await self.connector.job_get(job_id)
        assert job is not None, f"job {job_id} does not exist"
        return job

    async def fetch(
        self, *, limit: int = 10, queues: list[str] | None = None
    ) -> list[int]:
        """Claim ready jobs for WORKER_ID; returns their ids in claim order."""
        jobs = await self.connector.job_fetch_many(
            FetchParams(worker_id=WORKER_ID, queues=queues, limit=limit)
        )
        return [job.id for job in jobs]

    async def finish(
        self, job_id: int, status: Status = Status.SUCCEEDED, **options: Any
    ) -> None:
        """Report the outcome of a job, with the lock it was claimed with."""
        job = await self.get(job_id)
        await self.connector.job_finish_many(
            [JobOutcome(job_id=job_id, status=status, lock=job.lock, **options)]
        )

    async def run(self, job_id: int, status: Status = Status.SUCCEEDED) -> None:
        """Fetch a job (it must be the only ready one) and finish it."""
        assert await self.fetch() == [job_id]
        await self.finish(job_id, status)

    async def statuses(self, *job_ids: int) -> list[Status]:
        return [(await self.get(job_id)).status for job_id in job_ids]


@pytest.fixture
def jobs(connector: AsyncConnector) -> JobFactory:
    """The job factory: defer, fetch and finish jobs in one line."""
    return JobFactory(connector)


ERROR = JobError(
    type="ValueError", message="boom", traceback="Traceback...\nValueError: boom"
)


# ------------------------------------------------------------ sync connectors


@attrs.define
class SyncDriver:
    """A sync connector under test (open), and an async connector on the same
    jobs, to drive what the sync protocol cannot (fetch, finish) and to
    compare the two protocols."""

    name: str
    connector: SyncConnector
    make_async: Callable[[], AsyncConnector]

    def run_async(
        self,
        operation: Callable[[AsyncConnector], Awaitable[T]],
        backend: str = "asyncio",
    ) -> T:
        """Run ``operation`` on an open async connector, in its own event loop."""

        async def main() -> T:
            connector = self.make_async()
            await connector.open_async()
            try:
                return await operation(connector)
            finally:
                await connector.close_async()

        return anyio.run(main, backend=backend)


def _memory_sync_driver(schema: bool) -> SyncDriver:
    memory = InMemoryConnector(clock=FakeClock())
    sync = memory.get_sync_connector()
    sync.open()
    if schema:
        sync.schema_apply(SchemaManager.get_schema(), read_migrations())
    return SyncDriver("memory", sync, lambda: memory)


@contextlib.contextmanager
def _postgres_sync_driver(dsn: str) -> Iterator[SyncDriver]:
    sync = SyncPsycopgConnector(dsn, min_size=0, max_size=2)
    sync.open()
    try:
        yield SyncDriver("postgres", sync, lambda: PsycopgConnector(dsn, max_size=2))
    finally:
        sync.close()


SYNC_DRIVERS = [
    pytest.param("memory", id="memory"),
    pytest.param("postgres", id="postgres"),
]


@pytest.fixture(params=SYNC_DRIVERS)
def sync_driver(request: pytest.FixtureRequest) -> Iterator[SyncDriver]:
    """An open sync connector with the schema applied, on each implementation."""
    if request.param == "memory":
        yield _memory_sync_driver(schema=True)
        return
    with _postgres_sync_driver(request.getfixturevalue("pg_dsn")) as driver:
        yield driver


@pytest.fixture(params=SYNC_DRIVERS)
def bare_sync_driver(request: pytest.FixtureRequest) -> Iterator[SyncDriver]:
    """An open sync connector on storage without the schema."""
    if request.param == "memory":
        yield _memory_sync_driver(schema=False)
        return
    new_database: DatabaseFactory = request.getfixturevalue("new_database")
    with _postgres_sync_driver(new_database()) as driver:
        yield driver


@attrs.define
class SyncJobFactory:
    """The sync twin of :class:`JobFactory`; fetching and finishing go
    through the async connector, the sync protocol has neither."""

    driver: SyncDriver

    def defer(self, **options: Any) -> int:
        """Defer one job (options of :func:`to_defer`); returns its id."""
        (job_id,) = self.driver.connector.job_defer_many([to_defer(**options)])
        return job_id

    def get(self, job_id: int) -> Job:
        job = self.driver.connector.job_get(job_id)
        assert job is not None, f"job {job_id} does not exist"
        return job

    def fetch(self, *, limit: int = 10, queues: list[str] | None = None) -> list[int]:
        """Claim ready jobs for WORKER_ID; returns their ids in claim order."""
        return self.driver.run_async(
            lambda c: JobFactory(c).fetch(limit=limit, queues=queues)
        )

    def finish(self, job_id: int, status: Status = Status.SUCCEEDED) -> None:
        """Report the outcome of a claimed job."""
        self.driver.run_async(lambda c: JobFactory(c).finish(job_id, status))

    def run(self, job_id: int, status: Status = Status.SUCCEEDED) -> None:
        """Fetch a job (it must be the only ready one) and finish it."""
        assert self.fetch() == [job_id]
        self.finish(job_id, status)

    def statuses(self, *job_ids: int) -> list[Status]:
        return [self.get(job_id).status for job_id in job_ids]


@pytest.fixture
def sync_jobs(sync_driver: SyncDriver) -> SyncJobFactory:
    """The job factory of the sync connector under test."""
    return SyncJobFactory(sync_driver)
