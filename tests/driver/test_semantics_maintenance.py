"""Conformance: ``job_list_stalled`` and ``maintenance_run``, driven as the
rescuer drives them (list the stalled jobs, decide, finish them guarded by
the dead worker's id, then the housekeeping). Jobs of workers that stopped
heartbeating come back; dead workers' rows go; a worker that lives on gets
its id back, and an outcome from a worker that lost its job is ignored."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

import attrs
import pytest

from procrastinate_anyio import InMemoryConnector, JobError, Status
from procrastinate_anyio.connectors import FetchParams, JobOutcome, MaintenanceParams
from procrastinate_anyio.connectors.postgres import connect

if TYPE_CHECKING:
    from procrastinate_anyio import Job
    from procrastinate_anyio.connectors import AsyncConnector

    from .conftest import Driver, JobFactory

pytestmark = pytest.mark.anyio

TIMEOUT_SECONDS = 30.0
SILENCE = datetime.timedelta(seconds=60)
STALLED = JobError(type="StalledJob", message="worker died")


async def silence(connector: AsyncConnector, worker_id: int) -> None:
    """Make a worker's last heartbeat SILENCE old (longer than TIMEOUT_SECONDS)."""
    if isinstance(connector, InMemoryConnector):
        connector.store.workers[worker_id].last_heartbeat -= SILENCE
        return
    async with await connect(connector.conninfo) as conn:  # type: ignore[attr-defined]  # PsycopgConnector
        await conn.execute(
            "UPDATE pa_workers SET last_heartbeat = last_heartbeat - %s WHERE id = %s",
            (SILENCE, worker_id),
        )


async def fetch_for(connector: AsyncConnector, worker_id: int) -> list[int]:
    jobs = await connector.job_fetch_many(
        FetchParams(worker_id=worker_id, queues=None, limit=10)
    )
    return [job.id for job in jobs]


def back_to_todo(job: Job) -> JobOutcome:
    return JobOutcome(job_id=job.id, status=Status.TODO, lock=job.lock, error=STALLED)


@attrs.frozen
class Pass:
    leader: bool
    recovered: tuple[JobOutcome, ...]
    pruned_workers: int


async def maintain(connector: AsyncConnector, decide=back_to_todo) -> Pass:
    """One pass, as the rescuer makes it."""
    stalled = await connector.job_list_stalled(TIMEOUT_SECONDS)
    recovered = tuple(
        attrs.evolve(decide(job), worker_id=job.worker_id) for job in stalled.jobs
    )
    if recovered:
        await connector.job_finish_many(recovered)
    result = await connector.maintenance_run(
        MaintenanceParams(stalled_worker_timeout=TIMEOUT_SECONDS)
    )
    return Pass(
        leader=stalled.leader and result.leader,
        recovered=recovered,
        pruned_workers=result.pruned_workers,
    )


async def test_stalled_jobs_go_back_to_todo(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """The doing jobs of a silent worker go where ``decide`` says; a live
    worker's jobs stay doing."""
    dead = await connector.worker_register("dead", None)
    alive = await connector.worker_register("alive", None)
    lost = await jobs.defer()
    assert await fetch_for(connector, dead) == [lost]
    kept = await jobs.defer()
    assert await fetch_for(connector, alive) == [kept]
    await silence(connector, dead)
    seen: list[Job] = []

    def decide(job: Job) -> JobOutcome:
        seen.append(job)
        return back_to_todo(job)

    result = await maintain(connector, decide)

    assert result.leader
    assert [(job.id, job.status, job.worker_id) for job in seen] == [
        (lost, Status.DOING, dead)
    ]
    assert [outcome.job_id for outcome in result.recovered] == [lost]
    assert result.pruned_workers == 1
    assert await jobs.statuses(lost, kept) == [Status.TODO, Status.DOING]
    assert (await jobs.get(lost)).error == STALLED
    assert await fetch_for(connector, alive) == [lost]


async def test_stalled_job_fails(connector: AsyncConnector, jobs: JobFactory) -> None:
    """A stalled job that ``decide`` fails ends failed, with its error, and
    frees its lock."""
    dead = await connector.worker_register("dead", None)
    job_id = await jobs.defer(lock="L")
    after = await jobs.defer(lock="L")
    await fetch_for(connector, dead)
    await silence(connector, dead)

    await maintain(
        connector,
        lambda job: JobOutcome(
            job_id=job.id, status=Status.FAILED, lock=job.lock, error=STALLED
        ),
    )

    job = await jobs.get(job_id)
    assert (job.status, job.error) == (Status.FAILED, STALLED)
    assert job.finished_at is not None
    assert await jobs.fetch() == [after]


async def test_job_of_a_vanished_worker_is_stalled(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """A doing job whose worker row is gone is recovered at once."""
    gone = await connector.worker_register("gone", None)
    job_id = await jobs.defer()
    await fetch_for(connector, gone)
    await connector.worker_unregister(gone)

    result = await maintain(connector)

    assert [outcome.job_id for outcome in result.recovered] == [job_id]
    assert result.pruned_workers == 0


async def test_nothing_to_do(connector: AsyncConnector, jobs: JobFactory) -> None:
    """With live workers only, a pass recovers and prunes nothing; so does a
    second pass after a recovery."""
    alive = await connector.worker_register("alive", None)
    dead = await connector.worker_register("dead", None)
    kept = await jobs.defer()
    await fetch_for(connector, alive)
    assert (await maintain(connector)).recovered == ()
    await jobs.defer()
    await fetch_for(connector, dead)
    await silence(connector, dead)
    assert len((await maintain(connector)).recovered) == 1

    result = await maintain(connector)

    assert (result.leader, result.recovered, result.pruned_workers) == (True, (), 0)
    assert await jobs.statuses(kept) == [Status.DOING]
    assert await connector.worker_heartbeat(alive)


async def test_pruning_keeps_job_rows(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """Pruning a dead worker deletes its row only: its jobs keep its id."""
    dead = await connector.worker_register("dead", None)
    done = await jobs.defer()
    await fetch_for(connector, dead)
    await jobs.finish(done)
    await silence(connector, dead)

    result = await maintain(connector)

    assert (result.recovered, result.pruned_workers) == ((), 1)
    assert not await connector.worker_heartbeat(dead)
    job = await jobs.get(done)
    assert (job.status, job.worker_id) == (Status.SUCCEEDED, dead)


async def test_pruned_worker_comes_back_with_its_id(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """A live worker whose row was pruned registers again under its id; its
    job is not stalled then, and its outcome is written."""
    worker = await connector.worker_register("slow", None)
    await silence(connector, worker)
    assert (await maintain(connector)).pruned_workers == 1
    job_id = await jobs.defer()
    assert await fetch_for(connector, worker) == [job_id]

    assert not await connector.worker_heartbeat(worker)
    assert await connector.worker_register("slow", None, worker_id=worker) == worker

    assert (await maintain(connector)).recovered == ()
    await connector.job_finish_many(
        [JobOutcome(job_id=job_id, status=Status.SUCCEEDED, worker_id=worker)]
    )
    job = await jobs.get(job_id)
    assert (job.status, job.worker_id) == (Status.SUCCEEDED, worker)


async def test_outcome_of_a_worker_that_lost_its_job(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """When a recovered job runs again elsewhere, the first worker's late
    outcome is ignored and the second worker's is written."""
    first = await connector.worker_register("first", None)
    second = await connector.worker_register("second", None)
    job_id = await jobs.defer()
    await fetch_for(connector, first)
    await silence(connector, first)
    await maintain(connector)
    assert await fetch_for(connector, second) == [job_id]

    await connector.job_finish_many(
        [JobOutcome(job_id=job_id, status=Status.FAILED, worker_id=first)]
    )

    job = await jobs.get(job_id)
    # The first worker's attempt ended when its job was recovered.
    assert (job.status, job.worker_id, job.attempts) == (Status.DOING, second, 1)
    await connector.job_finish_many(
        [JobOutcome(job_id=job_id, status=Status.SUCCEEDED, worker_id=second)]
    )
    assert await jobs.statuses(job_id) == [Status.SUCCEEDED]


async def test_recovered_job_keeps_its_lock(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """A recovered job runs again before the other jobs of its lock, even
    those of higher priority."""
    dead = await connector.worker_register("dead", None)
    alive = await connector.worker_register("alive", None)
    first = await jobs.defer(lock="L")
    assert await fetch_for(connector, dead) == [first]
    second = await jobs.defer(lock="L", priority=10)
    await silence(connector, dead)

    await maintain(connector)

    assert await fetch_for(connector, alive) == [first]
    assert await fetch_for(connector, alive) == []
    await connector.job_finish_many(
        [JobOutcome(job_id=first, status=Status.SUCCEEDED, lock="L")]
    )
    assert await fetch_for(connector, alive) == [second]


async def test_stale_attempt_is_refused_even_for_the_same_worker(
    driver: Driver, jobs: JobFactory
) -> None:
    """The attempt token: once a job was recovered and claimed again, the
    first attempt's outcome is refused (and reported) even when the same
    worker made both claims; the second attempt's outcome is written."""
    connector = driver.connector
    worker = await connector.worker_register("paused", None)
    job_id = await jobs.defer()
    (first,) = await connector.job_fetch_many(
        FetchParams(worker_id=worker, queues=None, limit=1)
    )
    await silence(connector, worker)
    await maintain(
        connector,
        lambda job: attrs.evolve(
            back_to_todo(job), started_at=job.started_at, recovered=True
        ),
    )
    assert await connector.worker_register("paused", None, worker_id=worker) == worker
    await driver.travel(datetime.timedelta(seconds=1))
    (second,) = await connector.job_fetch_many(
        FetchParams(worker_id=worker, queues=None, limit=1)
    )
    assert second.started_at != first.started_at

    refused = await connector.job_finish_many(
        [
            JobOutcome(
                job_id=job_id,
                status=Status.FAILED,
                worker_id=worker,
                started_at=first.started_at,
            )
        ]
    )

    assert refused == [job_id]
    assert await jobs.statuses(job_id) == [Status.DOING]
    written = await connector.job_finish_many(
        [
            JobOutcome(
                job_id=job_id,
                status=Status.SUCCEEDED,
                worker_id=worker,
                started_at=second.started_at,
            )
        ]
    )
    assert written == []
    assert await jobs.statuses(job_id) == [Status.SUCCEEDED]


async def test_recoveries_are_counted(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """A recovery outcome adds one to the job's recoveries; a retry or a
    plain outcome does not, and the count survives them."""
    worker = await connector.worker_register("w", None)
    job_id = await jobs.defer()
    assert (await jobs.get(job_id)).recoveries == 0
    for expected in (1, 2):
        (job,) = await connector.job_fetch_many(
            FetchParams(worker_id=worker, queues=None, limit=1)
        )
        await connector.job_finish_many(
            [attrs.evolve(back_to_todo(job), worker_id=worker, recovered=True)]
        )
        assert (await jobs.get(job_id)).recoveries == expected
    await fetch_for(connector, worker)
    await connector.job_finish_many([back_to_todo(await jobs.get(job_id))])
    await fetch_for(connector, worker)
    await connector.job_finish_many(
        [JobOutcome(job_id=job_id, status=Status.FAILED, error=STALLED)]
    )

    job = await jobs.get(job_id)
    assert (job.status, job.recoveries) == (Status.FAILED, 2)


async def test_refused_outcomes_are_returned(
    connector: AsyncConnector, jobs: JobFactory
) -> None:
    """job_finish_many returns the ids of the outcomes it did not write:
    jobs not doing, owned by another worker, or unknown; sorted."""
    mine = await connector.worker_register("mine", None)
    other = await connector.worker_register("other", None)
    todo = await jobs.defer()
    owned = await jobs.defer()
    assert await fetch_for(connector, other) == [todo, owned]
    await connector.job_finish_many(
        [JobOutcome(job_id=todo, status=Status.TODO, worker_id=other)]
    )
    written = await jobs.defer()
    assert await fetch_for(connector, mine) == [todo, written]

    refused = await connector.job_finish_many(
        [
            JobOutcome(job_id=owned, status=Status.SUCCEEDED, worker_id=mine),
            JobOutcome(job_id=written, status=Status.SUCCEEDED, worker_id=mine),
            JobOutcome(job_id=10**9, status=Status.SUCCEEDED, worker_id=mine),
            JobOutcome(
                job_id=todo, status=Status.SUCCEEDED, worker_id=mine, delete_job=True
            ),
        ]
    )

    assert refused == [owned, 10**9]
    assert await jobs.statuses(owned, written) == [Status.DOING, Status.SUCCEEDED]
