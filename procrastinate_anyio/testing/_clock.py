"""A clock for tests: it stands still until moved."""

from __future__ import annotations

import datetime


class FakeClock:
    """The time of day, under the test's control.

    Give it to :class:`~procrastinate_anyio.InMemoryConnector`
    (``InMemoryConnector(clock=clock)``: which jobs are due, when heartbeats
    are old) and to the worker
    (``app.run_worker(clock=clock)``: retry delays, scheduled-job wake-ups),
    then :meth:`advance` it. (``schedule_in`` at defer time counts from the
    real time: schedule with ``schedule_at`` in tests that move the clock.)

    Args:
        now: the start, timezone-aware; default: the real time at creation.

    Raises:
        ValueError: ``now`` is naive.
    """

    def __init__(self, now: datetime.datetime | None = None) -> None:
        self._now = _aware(now or datetime.datetime.now(datetime.timezone.utc))

    def __repr__(self) -> str:
        return f"FakeClock({self._now.isoformat()})"

    def now(self) -> datetime.datetime:
        """The fake current time."""
        return self._now

    def __call__(self) -> datetime.datetime:
        """The same as :meth:`now`: the clock is also a plain callable."""
        return self._now

    def advance(
        self, delta: datetime.timedelta | None = None, **timedelta_kwargs: float
    ) -> datetime.datetime:
        """Move forward by ``delta`` or by ``timedelta``'s keywords
        (``clock.advance(minutes=5)``); returns the new time.

        Raises:
            ValueError: the move is backwards, or both forms are given.
        """
        if delta is not None and timedelta_kwargs:
            raise ValueError("give a timedelta or its keywords, not both")
        step = delta if delta is not None else datetime.timedelta(**timedelta_kwargs)
        if step < datetime.timedelta(0):
            raise ValueError(f"a clock moves forward, not by {step}")
        self._now += step
        return self._now

    def set(self, now: datetime.datetime) -> None:
        """Jump to ``now`` (forward or back: a test may need either)."""
        self._now = _aware(now)


def _aware(value: datetime.datetime) -> datetime.datetime:
    if value.utcoffset() is None:
        raise ValueError(f"the clock's time must be timezone-aware, not {value!r}")
    return value
