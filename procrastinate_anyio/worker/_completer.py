"""The completer: writes job outcomes in batches.

Job tasks send their outcome into a bounded memory stream; the completer
takes the first one, gathers more for at most ``flush_interval`` seconds (or
until ``batch_size``), and writes them with one ``job_finish_many``. A full
stream makes job tasks wait: back-pressure instead of unbounded memory. It
ends when every sender is closed and the last batch is written. A failed
write is retried with backoff: an outcome is never dropped while the worker
runs. (Batched completion is what graphile-worker and River do to go fast.)
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any, Final

import anyio
import attrs

from .._backoff import Backoff
from .._exceptions import ConnectorException
from .._job import JobError, Status
from ..connectors._types import JobOutcome

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from anyio.abc import TaskStatus
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from ..connectors._protocols import AsyncConnector

logger = logging.getLogger("procrastinate_anyio.completer")

RETRY_BACKOFF_START_SECONDS: Final = 0.05
RETRY_BACKOFF_MAX_SECONDS: Final = 5.0
ISOLATE_AFTER_ATTEMPTS: Final = 3


@attrs.frozen(kw_only=True)
class FlushResult:
    """What one flush did (for tests and statistics)."""

    written: int
    attempts: int


@attrs.frozen(kw_only=True)
class CompleterStatistics:
    """A snapshot of a :class:`Completer`: outcomes waiting in the stream, and
    outcomes gathered or being written."""

    buffered: int
    pending: int

    @property
    def idle(self) -> bool:
        """Nothing waits to be written."""
        return not self.buffered and not self.pending


class Completer:
    """Writes outcomes received on ``receive`` in batches.

    Args:
        connector: where to write.
        receive: the outcomes; the completer owns (and closes) it.
        batch_size: most outcomes per statement.
        flush_interval: how long to gather outcomes after the first one.
        written: each batch is sent there once it is written (the completer
            owns and closes it); it should not block (an unbounded stream).
    """

    def __init__(
        self,
        connector: AsyncConnector,
        receive: MemoryObjectReceiveStream[JobOutcome],
        *,
        batch_size: int,
        flush_interval: float,
        written: MemoryObjectSendStream[Sequence[JobOutcome]] | None = None,
    ) -> None:
        self._connector = connector
        self._receive = receive
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._written = written
        self.pending: list[JobOutcome] = []

    def report_unwritten(self, log_extra: Mapping[str, Any]) -> None:
        """After the final flush: log the outcomes that could not be written
        (their jobs stay ``doing`` until stalled-job recovery)."""
        if self.pending:
            logger.error(
                "%d job outcome(s) could not be written; stalled-job recovery will "
                "bring those jobs back",
                len(self.pending),
                extra={
                    "action": "completer_lost",
                    "jobs": [o.job_id for o in self.pending],
                    **log_extra,
                },
            )

    def statistics(self) -> CompleterStatistics:
        stream = self._receive.statistics()
        return CompleterStatistics(
            buffered=stream.current_buffer_used + stream.tasks_waiting_send,
            pending=len(self.pending),
        )

    async def run(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Write batches until every sender is closed and all is written.

        Cancellation: outcomes not written yet stay in ``pending`` (their
        jobs stay ``doing`` until stalled-job recovery brings them back).
        """
        task_status.started()
        try:
            async with self._receive:
                while await self._gather():
                    await self.flush()
                if self.pending:
                    await self.flush()
        finally:
            if self._written is not None:
                self._written.close()

    async def _gather(self) -> bool:
        """Fill ``pending``; False once the stream is over and nothing is pending."""
        try:
            self.pending.append(await self._receive.receive())
        except anyio.EndOfStream:
            return bool(self.pending)
        if self._take_ready():
            return True
        with anyio.move_on_after(self._flush_interval):
            while len(self.pending) < self._batch_size:
                try:
                    self.pending.append(await self._receive.receive())
                except anyio.EndOfStream:
                    break
                if self._take_ready():
                    break
        return True

    def _take_ready(self) -> bool:
        """Take what is already in the stream, without waiting; True once the
        batch is full or the stream is over."""
        while len(self.pending) < self._batch_size:
            try:
                self.pending.append(self._receive.receive_nowait())
            except anyio.WouldBlock:
                return False
            except anyio.EndOfStream:
                return True
        return True

    async def flush(self) -> FlushResult:
        """Write ``pending``, retrying with backoff until it works.

        The batch stays in ``pending`` until it is written.
        """
        batch = list(self.pending)
        attempts = await self._write(batch)
        if attempts is None:
            # The batch keeps failing: maybe the database is down, maybe one
            # outcome cannot be stored. Write them one by one, so that one
            # bad outcome cannot hold the others back.
            attempts = ISOLATE_AFTER_ATTEMPTS
            for outcome in batch:
                if await self._write([outcome]) is None:
                    await self._write_as_failure(outcome)
        self.pending = []
        if self._written is not None:
            with contextlib.suppress(anyio.BrokenResourceError):  # nobody listens
                self._written.send_nowait(batch)
        logger.debug(
            "Wrote %d job outcome(s)",
            len(batch),
            extra={"action": "completer_flush", "count": len(batch)},
        )
        return FlushResult(written=len(batch), attempts=attempts)

    async def _write(self, batch: list[JobOutcome]) -> int | None:
        """Write ``batch``; the number of attempts it took, or None once the
        database refused it ``ISOLATE_AFTER_ATTEMPTS`` times. Connection
        failures are retried without limit."""
        backoff = Backoff(RETRY_BACKOFF_START_SECONDS, RETRY_BACKOFF_MAX_SECONDS)
        attempts = rejections = 0
        while True:
            attempts += 1
            try:
                stale = await self._connector.job_finish_many(batch)
            except ConnectorException as exc:
                logger.warning(
                    "Could not write %d job outcome(s) (attempt %d): %s",
                    len(batch),
                    attempts,
                    exc,
                    extra={
                        "action": "completer_write_error",
                        "jobs": [o.job_id for o in batch],
                    },
                )
                rejections += not exc.transient
                if rejections >= ISOLATE_AFTER_ATTEMPTS:
                    return None
                await backoff.sleep()
                continue
            if stale:
                _log_stale(stale)
            return attempts

    async def _write_as_failure(self, outcome: JobOutcome) -> None:
        """Record a plain failure for an outcome that cannot be stored as it
        is."""
        logger.error(
            "The outcome of job %s cannot be stored; recording a failure instead",
            outcome.job_id,
            extra={"action": "completer_outcome_replaced", "job_id": outcome.job_id},
        )
        replacement = JobOutcome(
            job_id=outcome.job_id,
            status=Status.FAILED,
            lock=outcome.lock,
            worker_id=outcome.worker_id,
            error=JobError(
                type="procrastinate_anyio.OutcomeNotStored",
                message="The job's outcome could not be stored in the database",
            ),
        )
        if await self._write([replacement]) is None:
            # Even a plain failure is refused: the schema does not match this
            # version (healthchecks tell). The job stays doing until
            # stalled-job recovery; holding the others back would not help.
            logger.error(
                "Could not record any outcome for job %s; leaving it doing",
                outcome.job_id,
                extra={"action": "completer_outcome_dropped", "job_id": outcome.job_id},
            )


def _log_stale(job_ids: Sequence[int]) -> None:
    logger.warning(
        "Outcome of %d job(s) refused: the job was finished, or recovered and "
        "claimed again, since this worker claimed it: %s",
        len(job_ids),
        ", ".join(map(str, job_ids)),
        extra={"action": "completer_outcome_refused", "jobs": list(job_ids)},
    )
