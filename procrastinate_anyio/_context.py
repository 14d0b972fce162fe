"""What a task sees of the worker that runs it (``pass_context=True``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ._app import App
    from ._job import Job


class AbortSignal:
    """A flag, set when the job must stop (abort requested, timeout, or worker
    shutdown). Sync tasks poll it from their thread through
    ``context.should_abort()``: reading and setting a Python attribute is
    atomic, no lock is needed."""

    __slots__ = ("_deadline", "reason")

    def __init__(self, deadline_monotonic: float | None = None) -> None:
        self._deadline = deadline_monotonic
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    def is_set(self) -> bool:
        if self.reason is not None:
            return True
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self.set("timeout")
            return True
        return False


@attrs.frozen(kw_only=True)
class JobContext:
    """Passed first to a task declared with ``pass_context=True``.

    Attributes:
        app: the app the worker runs.
        worker_name: the running worker's name.
        worker_queues: the queues it listens to (None: all).
        job: the job being run.
        start_timestamp: when this attempt started (``time.time()``).
        additional_context: the worker's ``additional_context`` option.
    """

    app: App
    worker_name: str
    worker_queues: Sequence[str] | None
    job: Job
    start_timestamp: float
    additional_context: Mapping[str, Any] = attrs.field(factory=dict)
    abort_signal: AbortSignal = attrs.field(factory=AbortSignal, repr=False)

    def should_abort(self) -> bool:
        """True once the job should stop: an abort was requested, its timeout
        passed, or the worker is shutting down. Sync tasks should check it
        regularly and return (or raise) when it is True; async tasks are
        cancelled instead. Safe to call from any thread."""
        return self.abort_signal.is_set()
