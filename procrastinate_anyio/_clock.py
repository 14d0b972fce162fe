"""The wall clock, injected wherever the library reads the time of day.

Services, the job runner and the in-memory store take a :class:`Clock`
instead of calling ``datetime.now()`` themselves, so that tests can control
time (:class:`procrastinate_anyio.testing.FakeClock`). Deadlines and sleeps use
the event loop's clock (``anyio.current_time()``), which Trio's ``MockClock``
controls in tests.
"""

from __future__ import annotations

import datetime
from typing import Final, Protocol


class Clock(Protocol):
    """Tells the time of day."""

    def now(self) -> datetime.datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    """The real time."""

    def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.timezone.utc)

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK: Final = SystemClock()
