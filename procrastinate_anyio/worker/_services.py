"""The worker's small services, and how the worker routes what the pieces
report: the periodic services (heartbeat, abort poller, rescuer, periodic
deferrer), the notification router and the written-outcome counter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._context import StopReason
from .._job import Status
from .._periodic import DEFAULT_MAX_DELAY_SECONDS
from ._abort_poller import AbortPoller
from ._heartbeat import Heartbeat
from ._periodic_deferrer import PeriodicDeferrer
from ._rescuer import Rescuer

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from anyio.streams.memory import MemoryObjectReceiveStream

    from .._clock import Clock
    from .._context import AppLike
    from ..connectors._types import JobOutcome, Notification
    from ._fetcher import Fetcher
    from ._options import WorkerOptions
    from ._slots import Slots


def make_services(
    app: AppLike,
    slots: Slots,
    options: WorkerOptions,
    *,
    worker_id: int,
    clock: Clock,
) -> list[Callable[..., Any]]:
    """The ``run`` methods of the services that loop on their own."""
    connector = app.connector
    return [
        Heartbeat(
            connector,
            worker_id=worker_id,
            name=options.name,
            queues=options.queues,
            interval=options.update_heartbeat_interval,
        ).run,
        AbortPoller(connector, slots, interval=options.abort_job_polling_interval).run,
        Rescuer(
            connector,
            stalled_worker_timeout=options.stalled_worker_timeout,
            interval=min(
                options.update_heartbeat_interval, options.fetch_job_polling_interval
            ),
            max_crash_recoveries=options.max_crash_recoveries,
        ).run,
        PeriodicDeferrer(
            connector,
            app.periodic_tasks,
            max_delay=float(
                app.periodic_defaults.get("max_delay", DEFAULT_MAX_DELAY_SECONDS)
            ),
            clock=clock,
        ).run,
    ]


async def route_notifications(
    notifications: MemoryObjectReceiveStream[Notification],
    slots: Slots,
    fetcher: Fetcher,
    queues: Sequence[str] | None,
) -> None:
    """New jobs of ``queues`` (None: any) wake the fetcher; abort requests
    stop running jobs."""
    async with notifications:
        async for notification in notifications:
            if notification.kind == "abort":
                slots.stop(notification.job_id or 0, StopReason.ABORT)
            elif notification.kind == "defer" and (
                notification.queues is None
                or queues is None
                or any(queue in queues for queue in notification.queues)
            ):
                fetcher.wake()


async def count_written(
    written: MemoryObjectReceiveStream[Sequence[JobOutcome]],
    jobs_done: dict[str, int],
    slots: Slots,
    fetcher: Fetcher,
) -> None:
    """Count the outcomes the completer wrote, by status. Each batch is a
    change (a one-shot worker waits for the last ones); a retry wakes the
    fetcher, which must learn when it is due, and so does any batch under
    global limits (finished jobs leave room)."""
    async with written:
        async for batch in written:
            for outcome in batch:
                if not outcome.released:  # given back unstarted: not done
                    jobs_done[outcome.status.value] += 1
            slots.signal_changed()
            if fetcher.limited or any(
                outcome.status is Status.TODO for outcome in batch
            ):
                # A retry is due later (when?), or a limit has room again.
                fetcher.wake()
