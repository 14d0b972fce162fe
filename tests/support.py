"""Helpers shared by the test folders: hang guards and clocks.

Test-only, and simple on purpose (the public fake clock for users' tests
belongs in ``procrastinate_anyio.testing``).
"""

from __future__ import annotations

import datetime
from typing import Final

import attrs
import pytest
import trio.testing

HANG_GUARD_SECONDS: Final = 10
"""``fail_after`` bound of a test on the in-memory connector: it turns a
missed wake-up or cancellation into a failure instead of a hang."""

PG_HANG_GUARD_SECONDS: Final = 20
"""The hang guard of a test that runs a worker on PostgreSQL."""

PG_PROMPT_SECONDS: Final = 5
"""What "promptly" means for one PostgreSQL connection's operation (connect,
cancel, notifies): the bound is part of the behaviour tested."""


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def trio_mock_clock_param() -> object:
    """An ``anyio_backend`` parameter: trio with a fresh autojumping MockClock."""
    clock = trio.testing.MockClock(autojump_threshold=0)
    return pytest.param(("trio", {"clock": clock}), id="trio-mockclock")


def mock_clock() -> pytest.MarkDecorator:
    """Run the test on trio only, with a fresh autojumping MockClock."""
    return pytest.mark.parametrize("anyio_backend", [trio_mock_clock_param()])


@attrs.define
class FakeClock:
    """A clock for the in-memory connector (``InMemoryConnector(clock=...)``).

    Frozen at ``start`` (default: the real time at creation); with
    ``real_time=True`` it follows the real clock instead. Either way
    ``offset`` (or ``clock.now += delta``) moves it.
    """

    start: datetime.datetime = attrs.field(factory=utcnow)
    real_time: bool = False
    offset: datetime.timedelta = datetime.timedelta(0)

    def _base(self) -> datetime.datetime:
        return utcnow() if self.real_time else self.start

    @property
    def now(self) -> datetime.datetime:
        return self._base() + self.offset

    @now.setter
    def now(self, value: datetime.datetime) -> None:
        self.offset = value - self._base()

    def __call__(self) -> datetime.datetime:
        return self.now
