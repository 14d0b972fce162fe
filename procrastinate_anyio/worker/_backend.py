"""The event loop's own primitives where the worker uses one per job.

AnyIO wraps Trio's cancel scopes and events; on Trio the worker uses Trio's
own, which have the same interface (the protocols below) and cost less: a
cancel scope entered and left costs 8.5 µs through anyio on Trio, 6.1 µs as
Trio's own. On asyncio, anyio's are the loop's own, made from the backend's
classes (which skips a lookup per scope or event).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import anyio

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType


class JobScope(Protocol):
    """What the cancel scope jobs run in offers: ``anyio.CancelScope``, or on
    Trio, Trio's own (see :func:`job_scope_factory`)."""

    deadline: float

    @property
    def cancel_called(self) -> bool: ...

    def cancel(self) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> bool: ...


class LoopEvent(Protocol):
    """What the worker needs of an event: ``anyio.Event``, or on Trio, Trio's
    own (see :func:`event_factory`)."""

    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    async def wait(self) -> None: ...


def backend_name() -> str:
    """The running event loop's name ("asyncio" when it cannot be told)."""
    try:
        import sniffio  # a dependency of trio: without it, there is no trio

        return sniffio.current_async_library()
    except Exception:  # not installed, or a loop it does not know
        return "asyncio"


def event_factory() -> Callable[[], LoopEvent]:
    """How the running loop makes an event, once per job for an idle slot:
    Trio's own ``Event`` on Trio (anyio's wraps it), else the class of the
    backend's ``anyio.Event`` (which skips the backend lookup of each
    ``anyio.Event()``)."""
    if backend_name() == "trio":
        import trio

        return trio.Event
    return type(anyio.Event())


def job_scope_factory() -> Callable[[], JobScope]:
    """How the running loop makes the cancel scope of a slot task's jobs (one
    per slot task, and one more after each stop): Trio's own ``CancelScope``
    on Trio (anyio's wraps it: entering and leaving one costs 8.5 µs there
    against 6.1 µs for Trio's), else the class of
    the backend's ``anyio.CancelScope``: ``anyio.CancelScope()`` looks the
    backend up and initialises the scope twice (2.6 µs made, entered and
    left, against 1.7)."""
    if backend_name() == "trio":
        import trio

        return trio.CancelScope
    return type(anyio.CancelScope())
