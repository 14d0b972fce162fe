"""The listener: LISTEN/NOTIFY on its own connection, reconnecting with
backoff. Notifications are a latency hint; the fetcher's polling is what keeps
the worker correct while the listener is down."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

import anyio
from anyio.abc import TaskStatus

from .._exceptions import ConnectorException

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..connectors._protocols import AsyncConnector
    from ..connectors._types import Notification

logger = logging.getLogger("procrastinate_anyio.listener")

RECONNECT_BACKOFF_START_SECONDS: Final = 0.1
RECONNECT_BACKOFF_MAX_SECONDS: Final = 10.0


class _OnStarted(TaskStatus[None]):
    """A task status that calls back, to learn when the connector listens
    without wrapping it in a task group (which would turn its errors into
    exception groups)."""

    def __init__(self, callback: Callable[[], None]) -> None:
        self._callback = callback

    def started(self, value: Any = None) -> None:
        self._callback()


class Listener:
    """Keeps a LISTEN going and hands notifications to ``on_notification``.

    Args:
        connector: the connector to listen on.
        on_notification: called for each notification.
        on_listening: called each time listening (re)starts: the worker
            fetches then, since notifications may have been missed.
    """

    def __init__(
        self,
        connector: AsyncConnector,
        on_notification: Callable[[Notification], object],
        *,
        on_listening: Callable[[], object] = lambda: None,
    ) -> None:
        self._connector = connector
        self._on_notification = on_notification
        self._on_listening = on_listening
        self.connected = False
        self.reconnections = 0

    async def run(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen forever. Signals started after the first attempt, listening
        or not (polling covers the gap); only cancellation ends it."""
        backoff = RECONNECT_BACKOFF_START_SECONDS
        started = False

        def listening() -> None:
            nonlocal backoff, started
            backoff = RECONNECT_BACKOFF_START_SECONDS
            self.connected = True
            logger.info(
                "Listening for notifications", extra={"action": "listener_listening"}
            )
            self._on_listening()
            if not started:
                started = True
                task_status.started()

        while True:
            try:
                await self._connector.listen(
                    self._on_notification, task_status=_OnStarted(listening)
                )
            except ConnectorException as exc:
                logger.warning(
                    "Listener connection lost, reconnecting in %.1f s: %s",
                    backoff,
                    exc,
                    extra={"action": "listener_reconnect", "backoff": backoff},
                )
            self.connected = False
            if not started:
                started = True
                task_status.started()
            self.reconnections += 1
            await anyio.sleep(backoff)
            backoff = min(backoff * 2, RECONNECT_BACKOFF_MAX_SECONDS)
