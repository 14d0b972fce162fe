"""Progress on stderr, so that stdout carries only the tables.

A line per step, and during long runs a line every few seconds with the jobs
done so far (rewritten in place on a terminal).
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, TextIO

import anyio

if TYPE_CHECKING:
    from collections.abc import Callable


class Progress:
    """Reports the steps of a run on ``stream``."""

    def __init__(self, stream: TextIO = sys.stderr, *, interval: float = 2.0) -> None:
        self._stream = stream
        self._interval = interval
        self._started = time.monotonic()
        self._tty = stream.isatty()
        self._open_line = False

    def _write(self, text: str) -> None:
        self.end_watch()
        elapsed = time.monotonic() - self._started
        self._stream.write(f"[{elapsed:7.1f}s] {text}\n")
        self._stream.flush()

    def step(self, text: str) -> None:
        """A new step starts."""
        self._write(text)

    async def watch(self, done: Callable[[], int], total: int | None) -> None:
        """Report ``done()`` (of ``total``) until cancelled. Run it in the task
        group of the timed work and cancel it when the work ends."""
        started = time.monotonic()
        last = 0
        while True:
            await anyio.sleep(self._interval)
            now = done()
            rate = (now - last) / self._interval
            last = now
            of = f"/{total:,}" if total else ""
            text = (
                f"    {now:,}{of} jobs, {rate:,.0f}/s now, "
                f"{time.monotonic() - started:.0f}s"
            )
            if self._tty:
                self._stream.write("\r" + text + "   ")
                self._stream.flush()
                self._open_line = True
            else:
                self._write(text.strip())

    def end_watch(self) -> None:
        """End a line that ``watch`` rewrites in place."""
        if self._open_line:
            self._open_line = False
            self._stream.write("\n")
            self._stream.flush()
