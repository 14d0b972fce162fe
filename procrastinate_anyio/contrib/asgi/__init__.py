"""Run a worker inside an ASGI application's lifespan, or in any AnyIO code.

With Starlette or FastAPI::

    from procrastinate_anyio.contrib.asgi import lifespan

    web = Starlette(routes=..., lifespan=lifespan(app, concurrency=20))

Inside a lifespan of your own, or any AnyIO program::

    from procrastinate_anyio.contrib.asgi import running_worker

    async with running_worker(app, concurrency=20) as worker:
        ...  # the worker runs; app is open, views can defer jobs

Nothing here imports a web framework: a lifespan is an async context manager
taking the ASGI application, and that is all these helpers rely on.
"""

from __future__ import annotations

from ._lifespan import WorkerFailed as WorkerFailed
from ._lifespan import lifespan as lifespan
from ._lifespan import running_worker as running_worker

__all__ = ["WorkerFailed", "lifespan", "running_worker"]
