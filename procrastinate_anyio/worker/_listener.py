"""The listener: LISTEN/NOTIFY on its own connection, reconnecting with
backoff. Notifications are a latency hint; the fetcher's polling is what keeps
the worker correct while the listener is down.

What it hears goes to a memory stream, which the worker routes (new jobs wake
the fetcher, abort requests stop running jobs). Each time listening (re)starts,
it sends a ``defer`` notification for every queue: jobs deferred while it was
not listening were not heard.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

import anyio
from anyio.abc import TaskStatus

from .._backoff import Backoff
from .._exceptions import ConnectorException
from ..connectors._types import Notification

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio.streams.memory import MemoryObjectSendStream

    from ..connectors._protocols import AsyncConnector

logger = logging.getLogger("procrastinate_anyio.listener")

RECONNECT_BACKOFF_START_SECONDS: Final = 0.1
RECONNECT_BACKOFF_MAX_SECONDS: Final = 10.0
MISSED_JOBS: Final = Notification(kind="defer")
"""Sent when listening (re)starts: jobs of any queue may have been missed."""


class _OnStarted(TaskStatus[None]):
    """A task status that calls back, to learn when the connector listens
    without wrapping it in a task group (which would turn its errors into
    exception groups)."""

    def __init__(self, callback: Callable[[], None]) -> None:
        self._callback = callback

    def started(self, value: Any = None) -> None:
        self._callback()


class Listener:
    """Keeps a LISTEN going and sends what it hears to ``notifications``.

    Args:
        connector: the connector to listen on.
        notifications: where notifications go. A full stream drops them
            (logged): polling delivers the same news later.
    """

    def __init__(
        self,
        connector: AsyncConnector,
        notifications: MemoryObjectSendStream[Notification],
    ) -> None:
        self._connector = connector
        self._notifications = notifications
        self.connected = False
        self.reconnections = 0

    def _send(self, notification: Notification) -> None:
        try:
            self._notifications.send_nowait(notification)
        except anyio.WouldBlock:
            logger.debug(
                "Notification dropped: the worker is behind",
                extra={"action": "listener_notification_dropped"},
            )

    async def run(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen forever. Signals started after the first attempt, listening
        or not (polling covers the gap); only cancellation ends it."""
        backoff = Backoff(
            RECONNECT_BACKOFF_START_SECONDS, RECONNECT_BACKOFF_MAX_SECONDS
        )
        started = False

        def listening() -> None:
            nonlocal started
            backoff.reset()
            self.connected = True
            logger.info(
                "Listening for notifications", extra={"action": "listener_listening"}
            )
            self._send(MISSED_JOBS)
            if not started:
                started = True
                task_status.started()

        with self._notifications:
            while True:
                try:
                    await self._connector.listen(
                        self._send, task_status=_OnStarted(listening)
                    )
                except ConnectorException as exc:
                    logger.warning(
                        "Listener connection lost, reconnecting in %.1f s: %s",
                        backoff.delay,
                        exc,
                        extra={
                            "action": "listener_reconnect",
                            "backoff": backoff.delay,
                        },
                    )
                self.connected = False
                if not started:
                    started = True
                    task_status.started()
                self.reconnections += 1
                await backoff.sleep()
