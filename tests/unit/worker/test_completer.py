"""Tests of the completer: batched, retried writes of job outcomes.

Timing (the flush interval, the retry backoff) runs under Trio's MockClock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import anyio
import pytest

from procrastinate_anyio import ConnectorException, Status
from procrastinate_anyio.connectors import AsyncConnector, JobOutcome
from procrastinate_anyio.worker._completer import Completer, FlushResult
from tests.support import HANG_GUARD_SECONDS, mock_clock

if TYPE_CHECKING:
    from collections.abc import Sequence

    from anyio.streams.memory import MemoryObjectSendStream

pytestmark = pytest.mark.anyio


class RecordingConnector:
    """Records each ``job_finish_many``; the first ``failures`` calls fail."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.batches: list[list[int]] = []
        self.attempted_at: list[float] = []
        self.block = False

    async def job_finish_many(self, outcomes: Any) -> None:
        await anyio.lowlevel.checkpoint()
        self.attempted_at.append(anyio.current_time())
        if self.block:
            await anyio.sleep_forever()
        if self.failures:
            self.failures -= 1
            raise ConnectorException("connection lost")
        self.batches.append([o.job_id for o in outcomes])


def outcome(job_id: int) -> JobOutcome:
    return JobOutcome(job_id=job_id, status=Status.SUCCEEDED)


def make(
    connector: RecordingConnector | RefusingConnector,
    *,
    batch_size: int = 100,
    flush_interval: float = 1.0,
) -> tuple[Any, Any, Completer, Reported]:
    """The two ends of the outcome stream, the completer reading it, and the
    batches it reported written."""
    send, receive = anyio.create_memory_object_stream[JobOutcome](100)
    reported = Reported()
    completer = Completer(
        cast("AsyncConnector", connector),
        receive,
        batch_size=batch_size,
        flush_interval=flush_interval,
        written=cast("MemoryObjectSendStream[Sequence[JobOutcome]]", reported),
    )
    return send, receive, completer, reported


class Reported:
    """Stands for the completer's ``written`` stream: keeps the batches
    reported, by id."""

    def __init__(self) -> None:
        self._seen: list[list[int]] = []
        self.closed = False

    def send_nowait(self, batch: Sequence[JobOutcome]) -> None:
        assert not self.closed
        self._seen.append([o.job_id for o in batch])

    def close(self) -> None:
        self.closed = True

    def batches(self) -> list[list[int]]:
        return self._seen


async def test_writes_in_batches_of_at_most_batch_size():
    """Queued outcomes are written batch_size at a time, then run() ends."""
    connector = RecordingConnector()
    send, _, completer, written = make(connector, batch_size=2)
    async with send:
        for job_id in range(1, 6):
            await send.send(outcome(job_id))
    with anyio.fail_after(HANG_GUARD_SECONDS):
        await completer.run()
    assert connector.batches == [[1, 2], [3, 4], [5]]
    assert written.batches() == connector.batches
    assert completer.pending == []


@mock_clock()
async def test_gathers_outcomes_for_the_flush_interval():
    """Outcomes arriving within flush_interval of the first share one write."""
    connector = RecordingConnector()
    send, _, completer, _ = make(connector, flush_interval=1.0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(completer.run)
        async with send:
            await send.send(outcome(1))
            await anyio.sleep(0.5)
            await send.send(outcome(2))
            await anyio.sleep(1.0)
            await send.send(outcome(3))  # then the stream ends: flushed at once
    assert connector.batches == [[1, 2], [3]]
    assert connector.attempted_at == [pytest.approx(1.0), pytest.approx(1.5)]


@mock_clock()
async def test_retries_failed_writes_with_backoff():
    """A failed write is retried (0.05 s, then 0.1 s...) until it works; nothing is lost."""
    connector = RecordingConnector(failures=2)
    send, receive, completer, written = make(connector)
    completer.pending = [outcome(1), outcome(2)]
    start = anyio.current_time()
    with send, receive:
        result = await completer.flush()
    assert result == FlushResult(written=2, attempts=3)
    assert [t - start for t in connector.attempted_at] == [
        pytest.approx(0),
        pytest.approx(0.05),
        pytest.approx(0.15),
    ]
    assert written.batches() == [[1, 2]]
    assert completer.pending == []


async def test_cancelled_flush_keeps_outcomes_pending():
    """Outcomes whose write was cancelled stay in pending."""
    connector = RecordingConnector()
    connector.block = True
    send, _, completer, written = make(connector)
    await send.send(outcome(1))
    with send, anyio.fail_after(HANG_GUARD_SECONDS):
        async with anyio.create_task_group() as tg:
            tg.start_soon(completer.run)
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
    assert [o.job_id for o in completer.pending] == [1]
    assert written.batches() == []


async def test_writes_everything_before_ending():
    """run() ends only when the senders are closed and everything is written."""
    connector = RecordingConnector(failures=1)
    send, _, completer, written = make(connector, flush_interval=0.001)
    with anyio.fail_after(HANG_GUARD_SECONDS):
        async with anyio.create_task_group() as tg:
            tg.start_soon(completer.run)
            async with send:
                for job_id in range(1, 4):
                    await send.send(outcome(job_id))
    assert sorted(i for batch in written.batches() for i in batch) == [1, 2, 3]
    assert completer.pending == []


class RefusingConnector:
    """Refuses (non-transient) every batch holding one of ``refused`` ids;
    with ``refuse_failures``, also refuses the plain failures written instead."""

    def __init__(self, refused: set[int], *, refuse_failures: bool = False) -> None:
        self.refused = refused
        self.refuse_failures = refuse_failures
        self.stored: dict[int, JobOutcome] = {}

    async def job_finish_many(self, outcomes: Any) -> None:
        await anyio.lowlevel.checkpoint()
        for o in outcomes:
            replaced = o.error is not None and o.status is Status.FAILED
            if o.job_id in self.refused and (self.refuse_failures or not replaced):
                raise ConnectorException("value refused", transient=False)
        self.stored.update((o.job_id, o) for o in outcomes)


@mock_clock()
async def test_refused_outcome_does_not_hold_others_back():
    """An outcome the database refuses is isolated: the others are written,
    and a plain failure replaces it."""
    connector = RefusingConnector({2})
    send, receive, completer, written = make(connector)
    completer.pending = [outcome(1), outcome(2), outcome(3)]
    with send, receive:
        await completer.flush()
    assert sorted(connector.stored) == [1, 2, 3]
    assert connector.stored[1].status is Status.SUCCEEDED
    replacement = connector.stored[2]
    assert replacement.status is Status.FAILED
    assert replacement.error is not None
    assert "could not be stored" in replacement.error.message
    assert written.batches() == [[1, 2, 3]]
    assert completer.pending == []


@mock_clock()
async def test_outcome_refused_even_as_a_failure_is_dropped():
    """When even the plain failure is refused, the flush still ends (the job
    stays doing for stalled-job recovery) instead of blocking the worker."""
    connector = RefusingConnector({2}, refuse_failures=True)
    send, receive, completer, _ = make(connector)
    completer.pending = [outcome(1), outcome(2)]
    with send, receive, anyio.fail_after(HANG_GUARD_SECONDS):
        await completer.flush()
    assert sorted(connector.stored) == [1]
    assert completer.pending == []


@mock_clock()
async def test_connection_errors_are_retried_without_isolation():
    """Transient errors do not count towards isolation: the batch is
    written whole once the connection is back."""
    connector = RecordingConnector(failures=5)
    send, receive, completer, _ = make(connector)
    completer.pending = [outcome(1), outcome(2)]
    with send, receive:
        result = await completer.flush()
    assert result.attempts == 6
    assert connector.batches == [[1, 2]]
