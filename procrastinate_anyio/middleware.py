"""Task and worker middleware, under Procrastinate's module path
(``procrastinate.middleware``); see :mod:`procrastinate_anyio._middleware`."""

from __future__ import annotations

from ._middleware import AsyncCallNext as AsyncCallNext
from ._middleware import SyncCallNext as SyncCallNext
from ._middleware import TaskMiddleware as TaskMiddleware
from ._middleware import WorkerMiddleware as WorkerMiddleware
from ._middleware import compose as compose
from ._middleware import is_async_middleware as is_async_middleware

__all__ = [
    "AsyncCallNext",
    "SyncCallNext",
    "TaskMiddleware",
    "WorkerMiddleware",
    "compose",
    "is_async_middleware",
]
