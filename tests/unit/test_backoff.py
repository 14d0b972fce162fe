"""Tests of the one backoff helper behind every retry loop."""

from __future__ import annotations

import anyio
import pytest

from procrastinate_anyio._backoff import Backoff
from tests.support import mock_clock


def test_doubles_up_to_the_maximum_and_resets() -> None:
    """Delays double from start, stay at maximum, and start over after reset()."""
    backoff = Backoff(0.1, 0.5)

    assert [backoff.next() for _ in range(5)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.5, 0.5]
    )
    backoff.reset()
    assert backoff.next() == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("start", "maximum"),
    [pytest.param(0, 1, id="zero"), pytest.param(2, 1, id="start-over-max")],
)
def test_bad_bounds(start: float, maximum: float) -> None:
    """start must be positive and at most maximum."""
    with pytest.raises(ValueError, match="start"):
        Backoff(start, maximum)


@pytest.mark.anyio
@mock_clock()
async def test_sleep_waits_the_next_delay() -> None:
    """sleep() waits for the next delay and says how long."""
    backoff = Backoff(1.0, 4.0)

    assert [await backoff.sleep() for _ in range(3)] == [1.0, 2.0, 4.0]
    assert anyio.current_time() == pytest.approx(7.0)
