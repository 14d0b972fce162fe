"""The periodic deferrer: defers the due ticks of the periodic tasks, exactly
once per tick across workers (see :mod:`.._periodic` for the tick rules)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

import anyio
import attrs

from .._clock import SYSTEM_CLOCK
from .._exceptions import AlreadyEnqueued, ConnectorException
from .._periodic import DEFAULT_MAX_DELAY_SECONDS, next_tick, ticks_between
from ..connectors._types import PeriodicDeferParams

if TYPE_CHECKING:
    from collections.abc import Sequence

    from anyio.abc import TaskStatus

    from .._clock import Clock
    from .._periodic import PeriodicTask
    from ..connectors._protocols import AsyncConnector

logger = logging.getLogger("procrastinate_anyio.periodic")

MAX_SLEEP_SECONDS: Final = 60.0


@attrs.frozen
class PeriodicResult:
    """One pass: the ticks deferred now, and those another worker had done."""

    deferred: list[tuple[str, int, int]]
    already_done: int


class PeriodicDeferrer:
    """Defers the due ticks of periodic tasks.

    Args:
        connector: where the jobs are deferred.
        periodic_tasks: the tasks and their schedules.
        max_delay: ticks older than this many seconds are not caught up.
        clock: the time of day.
    """

    def __init__(
        self,
        connector: AsyncConnector,
        periodic_tasks: Sequence[PeriodicTask],
        *,
        max_delay: float = DEFAULT_MAX_DELAY_SECONDS,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not max_delay > 0:
            raise ValueError(
                f"max_delay must be a positive number of seconds, not {max_delay!r}"
            )
        self._connector = connector
        self._periodic_tasks = periodic_tasks
        self._max_delay = max_delay
        self._clock = clock
        self._last_seen: dict[tuple[str, str], float] = {}

    async def run(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        if not self._periodic_tasks:
            return
        while True:
            now = self._clock.now().timestamp()
            await self.run_once(now)
            wake = min(next_tick(p.cron, now) for p in self._periodic_tasks)
            delay = wake - self._clock.now().timestamp()
            await anyio.sleep(min(max(delay, 0.0), MAX_SLEEP_SECONDS))

    async def run_once(self, now: float) -> PeriodicResult:
        """Defer every tick due at ``now`` that was not deferred yet."""
        deferred: list[tuple[str, int, int]] = []
        already_done = 0
        for periodic in self._periodic_tasks:
            oldest = now - self._max_delay
            after = max(self._last_seen.get(periodic.key, oldest), oldest)
            try:
                for tick in ticks_between(periodic.cron, after, now):
                    job_id = await self._defer_tick(periodic, tick)
                    if job_id is None:
                        already_done += 1
                    else:
                        deferred.append((periodic.task.name, tick, job_id))
                    after = tick
            except ConnectorException as exc:
                # Not marked seen: the next pass tries these ticks again.
                logger.warning(
                    "Could not defer periodic job %s: %s",
                    periodic.task.name,
                    exc,
                    extra={
                        "action": "periodic_defer_error",
                        "task_name": periodic.task.name,
                    },
                )
                self._last_seen[periodic.key] = after
                continue
            except Exception:
                # User code (the task's configure options, a lock or queue
                # that does not validate, a hook): this tick is skipped, the
                # other periodic tasks and the worker go on.
                logger.exception(
                    "Could not prepare periodic job %s; tick skipped",
                    periodic.task.name,
                    extra={
                        "action": "periodic_task_error",
                        "task_name": periodic.task.name,
                    },
                )
            self._last_seen[periodic.key] = now
        return PeriodicResult(deferred=deferred, already_done=already_done)

    async def _defer_tick(self, periodic: PeriodicTask, tick: int) -> int | None:
        template = periodic.task.job_template(**periodic.configure_kwargs)
        job = template.make_job(
            {"timestamp": tick},
            self._clock.now(),
            periodic.task.blueprint.job_manager.json_dumps,
        )
        extra = {
            "task_name": periodic.task.name,
            "periodic_id": periodic.periodic_id,
            "tick": tick,
        }
        try:
            job_id = await self._connector.periodic_defer(
                PeriodicDeferParams(
                    job=job,
                    periodic_id=periodic.periodic_id,
                    defer_timestamp=tick,
                    keep_after=tick - int(self._max_delay) - 1,
                )
            )
        except AlreadyEnqueued:
            logger.info(
                "Periodic job %s not deferred: its queueing lock is taken",
                periodic.task.name,
                extra={"action": "periodic_already_enqueued", **extra},
            )
            return None
        if job_id is not None:
            logger.info(
                "Deferred periodic job %s for tick %s",
                periodic.task.name,
                tick,
                extra={"action": "periodic_deferred", "job_id": job_id, **extra},
            )
        return job_id
