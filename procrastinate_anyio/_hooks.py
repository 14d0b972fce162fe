"""Hooks: how an integration watches jobs being deferred and run without the
core knowing about it (``contrib.opentelemetry`` is the one user).

An app holds three lists (``app._hooks``), empty unless an integration
filled them, and the code they would wrap checks that first, so that an app
without hooks pays one truth test per defer call and per job:

- a *defer hook* ``hook(call)`` returns a context manager entered around the
  write of one defer call (one job, or a batch): it may replace
  ``call.jobs`` (with headers added, say) before the write, and reads
  ``call.job_ids`` after it, at exit (an exception of the write goes through
  it). Entered in the caller's thread and context, sync or async alike, so a
  hook may set a context variable (the current span) for the write;
- a *run hook* ``hook(run)`` returns a context manager entered on the
  worker's event loop around the whole run of one job, outside the
  middleware: what it sets in the context is what the task sees (AnyIO
  copies the context into a sync task's thread). At exit, ``run.outcome``
  holds how the job ended (None when the run itself was cancelled);
- a *worker service* ``service(app)`` is awaited in the services task group
  of each worker of the app, and cancelled when the worker stops.

The hooks are library code, not the user's: an exception from a defer hook
reaches the caller and writes nothing; one from a run hook fails that job
(the worker's net for code around a task); a worker service must handle its
own errors (one that escapes stops the worker, like any service's).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator, Sequence
    from contextlib import AbstractContextManager

    from ._job import Job, JobToDefer
    from .connectors._types import JobOutcome


@attrs.define
class DeferCall:
    """One defer call as defer hooks see it: ``jobs`` to write (a hook may
    replace them), then the ``job_ids`` written, in order."""

    jobs: Sequence[JobToDefer]
    job_ids: list[int] | None = None


@attrs.define
class JobRun:
    """One run of a job as run hooks see it: the claimed ``job``, the
    worker's name, and, at exit, the ``outcome`` the worker will write."""

    job: Job
    worker_name: str
    outcome: JobOutcome | None = None


DeferHook: TypeAlias = "Callable[[DeferCall], AbstractContextManager[Any]]"
RunHook: TypeAlias = "Callable[[JobRun], AbstractContextManager[Any]]"
WorkerService: TypeAlias = "Callable[[Any], Awaitable[None]]"


@attrs.define
class Hooks:
    """The hooks of one app."""

    defer: list[DeferHook] = attrs.field(factory=list)
    run: list[RunHook] = attrs.field(factory=list)
    worker_services: list[WorkerService] = attrs.field(factory=list)


@contextlib.contextmanager
def deferring(
    hooks: Sequence[DeferHook], jobs: Sequence[JobToDefer]
) -> Iterator[DeferCall]:
    """Enter the defer ``hooks`` (first outermost) around one defer call;
    the caller writes ``call.jobs`` and sets ``call.job_ids``.

    Raises:
        TypeError: a hook gave a job headers that are not text keys and
            values.
    """
    call = DeferCall(jobs=jobs)
    with contextlib.ExitStack() as stack:
        for hook in hooks:
            stack.enter_context(hook(call))
        if call.jobs is not jobs:
            for job in call.jobs:
                check_headers(job.headers)
        yield call


def check_headers(headers: object) -> None:
    """Raise TypeError unless ``headers`` maps text to text."""
    items = getattr(headers, "items", None)
    if items is None:
        raise TypeError(f"job headers must be a mapping, not {headers!r}")
    for key, value in items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"job headers map text to text, not {key!r} to {value!r}")
        if "\x00" in key or "\x00" in value:
            raise ValueError(f"job headers cannot hold the NUL character: {key!r}")
