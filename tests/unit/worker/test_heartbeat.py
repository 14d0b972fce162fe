"""Tests of the heartbeat: beats, re-registration, errors.

The interval runs under Trio's MockClock; single beats on both backends.
"""

from __future__ import annotations

import datetime

import anyio
import pytest

from procrastinate_anyio import ConnectorException, InMemoryConnector
from procrastinate_anyio.worker._heartbeat import Heartbeat, HeartbeatResult
from tests.support import HANG_GUARD_SECONDS, FakeClock, mock_clock

pytestmark = pytest.mark.anyio


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc))


@pytest.fixture
def connector(clock: FakeClock) -> InMemoryConnector:
    return InMemoryConnector(clock=clock)


async def heartbeat_for(
    connector: InMemoryConnector, interval: float = 10
) -> Heartbeat:
    """A heartbeat of a freshly registered worker "w" on queue "q"."""
    worker_id = await connector.worker_register("w", ["q"])
    return Heartbeat(
        connector, worker_id=worker_id, name="w", queues=["q"], interval=interval
    )


async def test_beat_refreshes_the_worker_row(connector, clock):
    """A beat moves last_heartbeat to now."""
    heartbeat = await heartbeat_for(connector)
    clock.now += datetime.timedelta(seconds=5)
    assert await heartbeat.run_once() == HeartbeatResult(ok=True)
    (worker,) = connector.store.workers.values()
    assert worker.last_heartbeat == clock.now


async def test_registers_again_when_pruned(connector):
    """A pruned worker row comes back, with the same id, name and queues."""
    heartbeat = await heartbeat_for(connector)
    (worker_id,) = connector.store.workers
    connector.store.workers.clear()
    assert await heartbeat.run_once() == HeartbeatResult(ok=True, registered_again=True)
    worker = connector.store.workers[worker_id]
    assert (worker.name, worker.queues) == ("w", ("q",))


async def test_database_errors_are_not_raised(connector, monkeypatch):
    """A failed beat is reported and logged; the next one tries again."""
    heartbeat = await heartbeat_for(connector)

    async def unreachable(worker_id: int) -> bool:
        raise ConnectorException("connection lost")

    monkeypatch.setattr(connector, "worker_heartbeat", unreachable)
    assert await heartbeat.run_once() == HeartbeatResult(ok=False)


@mock_clock()
async def test_beats_every_interval(
    connector: InMemoryConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run() beats once per interval, the first after one interval."""
    heartbeat = await heartbeat_for(connector, interval=10)
    beats: list[float] = []
    beat = connector.worker_heartbeat

    async def recording(worker_id: int) -> bool:
        beats.append(anyio.current_time())
        return await beat(worker_id)

    monkeypatch.setattr(connector, "worker_heartbeat", recording)
    start = anyio.current_time()
    with anyio.move_on_after(35):
        await heartbeat.run()
    assert [t - start for t in beats] == pytest.approx([10, 20, 30])


async def test_unexpected_errors_propagate(connector, monkeypatch):
    """An error that is not a ConnectorException ends run() (the worker stops)."""
    heartbeat = await heartbeat_for(connector, interval=0.001)

    async def broken(worker_id: int) -> bool:
        raise RuntimeError("bug")

    monkeypatch.setattr(connector, "worker_heartbeat", broken)
    with anyio.fail_after(HANG_GUARD_SECONDS), pytest.raises(RuntimeError, match="bug"):
        await heartbeat.run()
