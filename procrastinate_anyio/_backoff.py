"""Exponential backoff between attempts: the one helper behind every retry
loop of the library (fetching, listening, writing outcomes, cancelling a
query)."""

from __future__ import annotations

import anyio


class Backoff:
    """Delays that double from ``start`` up to ``maximum``; :meth:`reset`
    after a success.

    Args:
        start: the first delay, in seconds.
        maximum: the longest delay.
    """

    def __init__(self, start: float, maximum: float) -> None:
        if not 0 < start <= maximum:
            raise ValueError(f"need 0 < start <= maximum, not {start!r}, {maximum!r}")
        self.start = start
        self.maximum = maximum
        self.delay = start

    def __repr__(self) -> str:
        return (
            f"Backoff(start={self.start}, maximum={self.maximum}, delay={self.delay})"
        )

    def next(self) -> float:
        """The delay to wait now; the following one is twice as long."""
        delay = self.delay
        self.delay = min(delay * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self.delay = self.start

    async def sleep(self) -> float:
        """Sleep for :meth:`next`; returns how long."""
        delay = self.next()
        await anyio.sleep(delay)
        return delay
