"""The heartbeat: keeps the worker's row fresh so that others know it lives;
registers it again (same id) if its row was pruned."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio
import attrs

from .._exceptions import ConnectorException

if TYPE_CHECKING:
    from collections.abc import Sequence

    from anyio.abc import TaskStatus

    from ..connectors._protocols import AsyncConnector

logger = logging.getLogger("procrastinate_anyio.heartbeat")


@attrs.frozen
class HeartbeatResult:
    """One beat: did it reach the database, and was the row re-created."""

    ok: bool
    registered_again: bool = False


class Heartbeat:
    def __init__(
        self,
        connector: AsyncConnector,
        *,
        worker_id: int,
        name: str,
        queues: Sequence[str] | None,
        interval: float,
    ) -> None:
        self._connector = connector
        self._worker_id = worker_id
        self._name = name
        self._queues = queues
        self._interval = interval

    async def run(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        while True:
            await anyio.sleep(self._interval)
            await self.run_once()

    async def run_once(self) -> HeartbeatResult:
        """Beat once. A database error is logged, not raised: the next beat
        tries again."""
        try:
            if await self._connector.worker_heartbeat(self._worker_id):
                return HeartbeatResult(ok=True)
            logger.warning(
                "Worker row %s was pruned; registering again",
                self._worker_id,
                extra={
                    "action": "heartbeat_register_again",
                    "worker_id": self._worker_id,
                },
            )
            await self._connector.worker_register(
                self._name, self._queues, worker_id=self._worker_id
            )
            return HeartbeatResult(ok=True, registered_again=True)
        except ConnectorException as exc:
            logger.warning(
                "Heartbeat failed: %s",
                exc,
                extra={"action": "heartbeat_error", "worker_id": self._worker_id},
            )
            return HeartbeatResult(ok=False)
