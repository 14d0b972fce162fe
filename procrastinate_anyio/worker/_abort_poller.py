"""The abort poller: asks the database, every ``interval`` seconds, which of
the running jobs have an abort request, and stops them. Notifications deliver
abort requests at once while the listener is connected; this is the fallback
(and the only way with ``listen_notify=False``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio
import attrs

from .._context import StopReason
from .._exceptions import ConnectorException

if TYPE_CHECKING:
    from anyio.abc import TaskStatus

    from ..connectors._protocols import AsyncConnector
    from ._slots import Slots

logger = logging.getLogger("procrastinate_anyio.worker")


@attrs.frozen
class AbortPollResult:
    """One pass: how many running jobs were asked about, which were stopped."""

    polled: int
    aborted: tuple[int, ...] = ()


class AbortPoller:
    """Stops the running jobs of ``slots`` whose abort was requested.

    Args:
        connector: where abort requests are stored.
        slots: the running jobs.
        interval: seconds between passes.
    """

    def __init__(self, connector: AsyncConnector, slots: Slots, *, interval: float):
        if not interval > 0:
            raise ValueError(f"interval must be positive, not {interval!r}")
        self._connector = connector
        self._slots = slots
        self._interval = interval

    async def run(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        while True:
            await anyio.sleep(self._interval)
            await self.run_once()

    async def run_once(self) -> AbortPollResult | None:
        """One pass; None when the database could not be reached (logged)."""
        job_ids = self._slots.job_ids()
        if not job_ids:
            return AbortPollResult(polled=0)
        try:
            requested = await self._connector.job_abort_requested_many(job_ids)
        except ConnectorException as exc:
            logger.warning(
                "Could not poll abort requests: %s",
                exc,
                extra={"action": "abort_poll_error"},
            )
            return None
        aborted = tuple(
            job_id for job_id in requested if self._slots.stop(job_id, StopReason.ABORT)
        )
        return AbortPollResult(polled=len(job_ids), aborted=aborted)
