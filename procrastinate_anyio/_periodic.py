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
from typing import TYPE_CHECKING, Any, Final

import attrs
from croniter import croniter

from ._deferrer import signature_checker

if TYPE_CHECKING:
    from collections.abc import Mapping

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
    # The template validates the options (raises on bad ones).
    template = task.job_template(**configure_kwargs)
    check = signature_checker(
        task.func, task_name=task.name, pass_context=task.pass_context
    )
    check({**template.task_kwargs, "timestamp": 0})
    return PeriodicTask(
        task=task,
        cron=cron,
        periodic_id=periodic_id,
        configure_kwargs=dict(configure_kwargs),
    )
