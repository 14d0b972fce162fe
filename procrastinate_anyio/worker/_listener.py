"""The worker's listener: it subscribes the worker to the app's notification
hub (one LISTEN connection per app, shared with ``wait_for_job`` waiters; see
:mod:`.._notifications`) and hosts the hub while the worker runs.

What it hears goes to a memory stream, which the worker routes (new jobs wake
the fetcher, abort requests stop running jobs). Each time listening (re)starts,
it sends a ``defer`` notification for every queue: jobs deferred while nobody
listened were not heard. Notifications are a latency hint; the fetcher's
polling is what keeps the worker correct while the connection is down.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

import anyio

from ..connectors._types import Notification

if TYPE_CHECKING:
    from anyio.abc import TaskStatus
    from anyio.streams.memory import MemoryObjectSendStream

    from .._notifications import NotificationHub

logger = logging.getLogger("procrastinate_anyio.listener")

MISSED_JOBS: Final = Notification(kind="defer")
"""Sent when listening (re)starts: jobs of any queue may have been missed."""


async def listen(
    hub: NotificationHub,
    notifications: MemoryObjectSendStream[Notification],
    *,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Send what ``hub`` hears to ``notifications`` (closed at the end), and
    host the hub, until cancelled. A full stream drops notifications
    (logged): polling delivers the same news later.

    Signals ``task_status.started()`` once the hub has tried to listen.
    """

    def send(notification: Notification) -> None:
        try:
            notifications.send_nowait(notification)
        except anyio.WouldBlock:
            logger.debug(
                "Notification dropped: the worker is behind",
                extra={"action": "listener_notification_dropped"},
            )
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            # The worker is stopping and nobody reads any more. The hub calls
            # this from whoever sent the notification (the in-memory store
            # calls it from the completer's write): raising would fail them.
            pass

    with notifications, hub.subscribe(send, on_listening=lambda: send(MISSED_JOBS)):
        await hub.run(task_status=task_status)
