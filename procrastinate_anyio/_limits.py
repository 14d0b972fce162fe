"""Global limits: at most N jobs of a task (or a queue) running at once, and
at most N started per period, across every worker.

Pure declarations and arithmetic; the claim enforces them in the database
(``job_fetch_many`` with ``FetchParams.limits`` runs ``pa_claim_limited`` of
schema.sql, which walks the candidates as :func:`pick` does; the in-memory
store uses :func:`room` and :func:`pick` themselves), so adding workers never
breaks a limit.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final, Literal, TypeVar

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

T = TypeVar("T")

PERIODS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0}
_RATE: Final = re.compile(r"^\s*(?P<count>\d+)\s*/\s*(?P<unit>[smh])\s*$")


@attrs.frozen
class RateLimit:
    """At most ``count`` starts per ``period_seconds``."""

    count: int
    period_seconds: float

    @classmethod
    def parse(cls, text: object) -> RateLimit:
        """``"N/s"``, ``"N/m"`` or ``"N/h"``, N a positive integer.

        Raises:
            ValueError, TypeError: anything else.
        """
        if not isinstance(text, str):
            raise TypeError(f"rate_limit must be a string like '10/s', not {text!r}")
        match = _RATE.match(text)
        if match is None or int(match["count"]) < 1:
            raise ValueError(
                f"rate_limit must be 'N/s', 'N/m' or 'N/h' with N >= 1, not {text!r}"
            )
        return cls(int(match["count"]), PERIODS[match["unit"]])

    def __str__(self) -> str:
        unit = {1.0: "s", 60.0: "m", 3600.0: "h"}[self.period_seconds]
        return f"{self.count}/{unit}"


def check_concurrency_limit(value: object) -> int | None:
    """None, or a positive int.

    Raises:
        ValueError, TypeError: anything else.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"concurrency_limit must be an int, not {value!r}")
    if value < 1:
        raise ValueError(f"concurrency_limit must be at least 1, not {value}")
    return value


def check_rate_limit(value: object) -> RateLimit | None:
    """None, a :class:`RateLimit` or its text."""
    if value is None or isinstance(value, RateLimit):
        return value
    return RateLimit.parse(value)


@attrs.frozen(kw_only=True)
class Limit:
    """A limit the claim enforces, on the jobs of a task (``scope="task"``:
    its name and aliases) or of a queue (its name)."""

    scope: Literal["task", "queue"]
    names: tuple[str, ...]
    concurrency: int | None = None
    rate: RateLimit | None = None

    @property
    def key(self) -> str:
        """Names the limit in the database (its advisory lock, its starts)."""
        return f"{self.scope}:{self.names[0]}"

    def covers(self, task_name: str, queue: str) -> bool:
        return (task_name if self.scope == "task" else queue) in self.names


@attrs.frozen(kw_only=True)
class QueueLimits:
    """The limits of one queue: ``App(queue_limits={"emails": QueueLimits(...)})``
    (a mapping with the same keys works too).

    Attributes:
        concurrency_limit: at most this many of the queue's jobs run at once.
        rate_limit: at most this many of its jobs start per period ("N/s").
    """

    concurrency_limit: int | None = attrs.field(
        default=None, converter=check_concurrency_limit
    )
    rate_limit: RateLimit | None = attrs.field(default=None, converter=check_rate_limit)

    def __attrs_post_init__(self) -> None:
        if self.concurrency_limit is None and self.rate_limit is None:
            raise ValueError("give concurrency_limit or rate_limit (or both)")


LOOK_AHEAD_BATCHES: Final = 2
"""How deep a claim under limits looks past the jobs of full limits: this
many batches (at least LOOK_AHEAD_MIN jobs)."""
LOOK_AHEAD_MIN: Final = 200


def look_ahead(batch: int) -> int:
    """How many jobs at the head of the line a claim of ``batch`` jobs reads."""
    return max(batch * LOOK_AHEAD_BATCHES, LOOK_AHEAD_MIN)


def room(
    limits: Sequence[Limit], doing: Mapping[str, int], started: Mapping[str, int]
) -> dict[str, int]:
    """How many more jobs each limit (by key) lets start now, from its jobs
    running (``doing``) and started within its period (``started``)."""
    free: dict[str, int] = {}
    for limit in limits:
        left = []
        if limit.concurrency is not None:
            left.append(limit.concurrency - doing.get(limit.key, 0))
        if limit.rate is not None:
            left.append(limit.rate.count - started.get(limit.key, 0))
        free[limit.key] = max(0, min(left))
    return free


def pick(
    candidates: Iterable[T],
    limits: Sequence[Limit],
    free: Mapping[str, int],
    count: int,
    *,
    where: Callable[[T], tuple[str, str]],
) -> tuple[list[T], list[str]]:
    """The first ``count`` candidates (in the order given: best first) that
    every limit covering them still has room for.

    Returns:
        the picked candidates, and the key of each rate limit once per
        picked job it covers (the starts to record).
    """
    left = dict(free)
    picked: list[T] = []
    starts: list[str] = []
    for candidate in candidates:
        if len(picked) >= count:
            break
        task_name, queue = where(candidate)
        covering = [limit for limit in limits if limit.covers(task_name, queue)]
        if any(left[limit.key] <= 0 for limit in covering):
            continue
        for limit in covering:
            left[limit.key] -= 1
            if limit.rate is not None:
                starts.append(limit.key)
        picked.append(candidate)
    return picked, starts
