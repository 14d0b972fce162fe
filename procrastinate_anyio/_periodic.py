"""Periodic tasks: cron schedules that defer jobs, exactly once per tick.

Every worker runs a :class:`PeriodicDeferrer`. For each tick that is due, it
asks the driver to record ``(task, periodic_id, tick)`` and, only if that row
is new, to defer the job, in one transaction: a primary key makes each tick
deferred once, however many workers run. After downtime, missed ticks are
caught up, but only those younger than ``max_delay`` seconds.

The tick arithmetic is pure (``now`` is passed in), so it is tested without
waiting; croniter does the cron parsing.
"""

from __future__ import annotations

import datetime
import logging
import time
from typing import TYPE_CHECKING, Any, Final

import anyio
import attrs
from croniter import croniter

from ._deferrer import signature_checker
from ._driver import PeriodicDeferParams
from ._exceptions import AlreadyEnqueued, ConnectorException

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from anyio.abc import TaskStatus

    from ._app import App
    from ._task import Task

logger = logging.getLogger("procrastinate_anyio.periodic")

DEFAULT_MAX_DELAY_SECONDS: Final = 600.0
MAX_SLEEP_SECONDS: Final = 60.0


def check_cron(cron: str) -> str:
    """Validate a cron expression: 5 fields, or 6 with seconds last.

    Raises:
        ValueError: the expression is invalid.
    """
    if not isinstance(cron, str):
        raise TypeError(f"cron must be a string, not {cron!r}")
    fields = cron.split()
    if len(fields) not in (5, 6) or not croniter.is_valid(cron):
        raise ValueError(
            f"Invalid cron expression {cron!r}: expected 5 fields "
            "(minute hour day month weekday), or 6 with seconds last"
        )
    return cron


def ticks_between(cron: str, after: float, until: float) -> list[int]:
    """The tick timestamps of ``cron`` in ``(after, until]``, oldest first."""
    start = datetime.datetime.fromtimestamp(after, datetime.timezone.utc)
    iterator = croniter(cron, start)
    ticks: list[int] = []
    while True:
        tick = int(iterator.get_next(float))
        if tick > until:
            return ticks
        ticks.append(tick)


def next_tick(cron: str, now: float) -> float:
    """The first tick of ``cron`` strictly after ``now``."""
    start = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
    return float(croniter(cron, start).get_next(float))


@attrs.frozen(kw_only=True)
class PeriodicTask:
    """A task deferred on a cron schedule, with ``timestamp`` (the tick, in
    seconds since the epoch) among its arguments."""

    task: Task[Any, Any]
    cron: str
    periodic_id: str = ""
    configure_kwargs: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.task.name, self.periodic_id)


def make_periodic_task(
    task: Task[Any, Any],
    *,
    cron: str,
    periodic_id: str,
    configure_kwargs: Mapping[str, Any],
) -> PeriodicTask:
    """Validate everything at declaration, not at the first tick.

    Raises:
        ValueError: invalid cron expression or options.
        InvalidJobArguments: the task does not accept ``timestamp`` (and the
            ``task_kwargs``).
    """
    check_cron(cron)
    if not isinstance(periodic_id, str):
        raise TypeError(f"periodic_id must be a string, not {periodic_id!r}")
    # configure() validates the options (raises on bad ones).
    deferrer = task.configure(**configure_kwargs)
    check = signature_checker(
        task.func, task_name=task.name, pass_context=task.pass_context
    )
    check({**deferrer.template.task_kwargs, "timestamp": 0})
    return PeriodicTask(
        task=task,
        cron=cron,
        periodic_id=periodic_id,
        configure_kwargs=dict(configure_kwargs),
    )


@attrs.frozen
class PeriodicResult:
    """One pass: the ticks deferred now, and those another worker had done."""

    deferred: list[tuple[str, int, int]]
    already_done: int


class PeriodicDeferrer:
    """Defers the due ticks of an app's periodic tasks.

    Args:
        app: the app whose ``periodic_tasks`` to defer.
        max_delay: ticks older than this many seconds are not caught up.
        clock: the current time in seconds since the epoch.
    """

    def __init__(
        self,
        app: App,
        *,
        max_delay: float = DEFAULT_MAX_DELAY_SECONDS,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not max_delay > 0:
            raise ValueError(
                f"max_delay must be a positive number of seconds, not {max_delay!r}"
            )
        self._app = app
        self._max_delay = max_delay
        self._clock = clock or time.time
        self._last_seen: dict[tuple[str, str], float] = {}

    async def run(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        if not self._app.periodic_tasks:
            return
        while True:
            now = self._clock()
            await self.run_once(now)
            wake = min(next_tick(p.cron, now) for p in self._app.periodic_tasks)
            await anyio.sleep(min(max(wake - self._clock(), 0.0), MAX_SLEEP_SECONDS))

    async def run_once(self, now: float) -> PeriodicResult:
        """Defer every tick due at ``now`` that was not deferred yet."""
        deferred: list[tuple[str, int, int]] = []
        already_done = 0
        for periodic in self._app.periodic_tasks:
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
            self._last_seen[periodic.key] = now
        return PeriodicResult(deferred=deferred, already_done=already_done)

    async def _defer_tick(self, periodic: PeriodicTask, tick: int) -> int | None:
        deferrer = periodic.task.configure(**periodic.configure_kwargs)
        job = deferrer.template.make_job(
            {"timestamp": tick}, datetime.datetime.now(datetime.timezone.utc)
        )
        extra = {
            "task_name": periodic.task.name,
            "periodic_id": periodic.periodic_id,
            "tick": tick,
        }
        try:
            job_id = await self._app.connector.periodic_defer(
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
