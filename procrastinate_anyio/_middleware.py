"""Middleware: code that wraps the run of a task (Procrastinate 3.9's model).

A middleware is a callable ``(call_next, context, worker)`` that calls (or
awaits) ``call_next()`` and returns its result:

- a *task middleware* runs where the task runs: a plain ``def`` wraps a sync
  task in its worker thread, an ``async def`` wraps an async task on the event
  loop. Declared per task (``@app.task(task_middleware=[...])``) or for every
  task of a worker (``task_middleware=`` worker option, filtered by kind);
- a *worker middleware* is always ``async def`` and wraps every job on the
  event loop, the thread hop of a sync task included (``worker_middleware=``).

Outermost first: worker middleware, the worker's task middleware, the task's
own, then the task. The chain is built only for jobs that have middleware, so
the common job pays nothing.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeAlias

from ._exceptions import MiddlewareKindMismatch

# The context is a JobContext; not imported, even for typing: the context
# module depends on the task module, which depends on this one.

SyncCallNext: TypeAlias = Callable[[], Any]
AsyncCallNext: TypeAlias = Callable[[], Awaitable[Any]]
TaskMiddleware: TypeAlias = Callable[[Any, Any, Any], Any]
"""``(call_next, context, worker)``: sync for sync tasks, async for async ones."""
WorkerMiddleware: TypeAlias = Callable[[AsyncCallNext, Any, Any], Awaitable[Any]]
"""``(call_next, context, worker)``, always ``async def``."""


def is_async_middleware(middleware: Callable[..., Any]) -> bool:
    """Whether ``middleware`` is a coroutine function (a ``functools.partial``
    of one, or an object whose ``__call__`` is one)."""
    func: Any = middleware
    while isinstance(func, functools.partial):
        func = func.func
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(type(func), "__call__", None)  # noqa: B004  # the method, not callable()
    return call is not None and inspect.iscoroutinefunction(call)


def _callables(kind: str, middlewares: Iterable[Any]) -> tuple[Any, ...]:
    found = tuple(middlewares)
    for middleware in found:
        if not callable(middleware):
            raise TypeError(f"{kind} must be callables, not {middleware!r}")
    return found


def check_task_middleware(
    task_name: str, task_is_async: bool, middlewares: Iterable[Any] | None
) -> tuple[TaskMiddleware, ...]:
    """The middleware of one task, checked against the task's kind.

    Raises:
        TypeError: an entry is not callable.
        MiddlewareKindMismatch: an async middleware on a sync task, or the
            reverse.
    """
    found = _callables("task_middleware", middlewares or ())
    for middleware in found:
        if is_async_middleware(middleware) is not task_is_async:
            raise MiddlewareKindMismatch(
                f"Task {task_name!r} is {'async' if task_is_async else 'sync'}: "
                f"its middleware must be too, not {middleware!r}"
            )
    return found


def check_worker_task_middleware(middlewares: Iterable[Any]) -> tuple[Any, ...]:
    """The worker's task middleware: callables of either kind."""
    return _callables("task_middleware", middlewares)


def check_worker_middleware(middlewares: Iterable[Any]) -> tuple[Any, ...]:
    """The worker middleware: async callables.

    Raises:
        TypeError: an entry is not callable.
        MiddlewareKindMismatch: an entry is not async.
    """
    found = _callables("worker_middleware", middlewares)
    for middleware in found:
        if not is_async_middleware(middleware):
            raise MiddlewareKindMismatch(
                f"Worker middleware must be async (async def), not {middleware!r}"
            )
    return found


def compose(
    middlewares: Sequence[Callable[..., Any]],
    innermost: Callable[[], Any],
    context: Any,
    worker: Any,
) -> Callable[[], Any]:
    """Nest ``middlewares`` around ``innermost``, the first one outermost."""
    call_next = innermost
    for middleware in reversed(middlewares):
        call_next = functools.partial(middleware, call_next, context, worker)
    return call_next


def task_chain(
    worker_task_middleware: Sequence[Any],
    own: Sequence[Any],
    task_is_async: bool,
) -> tuple[Any, ...]:
    """The task middleware of one job: the worker's of the task's kind, then
    the task's own."""
    return (
        *(m for m in worker_task_middleware if is_async_middleware(m) is task_is_async),
        *own,
    )
