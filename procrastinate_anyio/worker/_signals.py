"""SIGINT and SIGTERM: the first one stops the worker gracefully, the next one
(or any after a stop was requested) cancels the running jobs."""

from __future__ import annotations

import logging
import signal
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio.abc import TaskStatus

logger = logging.getLogger("procrastinate_anyio.worker")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def handle_signals(
    scope: anyio.CancelScope,
    *,
    stop: Callable[[bool], None],
    stopping: Callable[[], bool],
    worker_name: str,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Receive signals until ``scope`` is cancelled.

    Args:
        scope: cancelled by the worker once it has flushed and unregistered,
            so that a late Ctrl-C cannot interrupt those.
        stop: called with ``now``: False for a graceful stop, True to cancel
            the running jobs.
        stopping: whether a stop was already requested.
        worker_name: for the log lines.
    """
    with scope, anyio.open_signal_receiver(*SIGNALS) as signals:
        task_status.started()
        async for signum in signals:
            name = signal.Signals(signum).name
            now = stopping()
            logger.info(
                "Received %s: %s",
                name,
                "cancelling running jobs" if now else "stopping gracefully",
                extra={
                    "action": "worker_signal",
                    "signal": name,
                    "worker": worker_name,
                },
            )
            stop(now)
