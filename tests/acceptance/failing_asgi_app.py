"""A Starlette application whose worker breaks on request (``GET /break``),
for ``test_examples.py``: the lifespan helper must then stop the server.
Its database comes from ``PA_DSN``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import procrastinate_anyio as pa
from procrastinate_anyio.contrib.asgi import lifespan

if TYPE_CHECKING:
    from starlette.requests import Request


class BreakableConnector(pa.PsycopgConnector):
    """Its heartbeat fails with an unexpected error once ``broken`` is set."""

    broken = False

    async def worker_heartbeat(self, worker_id: int) -> bool:
        if self.broken:
            raise RuntimeError("the heartbeat broke")
        return await super().worker_heartbeat(worker_id)


connector = BreakableConnector(os.environ.get("PA_DSN", ""))
app = pa.App(connector=connector)


async def break_worker(request: Request) -> PlainTextResponse:
    connector.broken = True
    return PlainTextResponse("broken")


web = Starlette(
    routes=[Route("/break", break_worker)],
    lifespan=lifespan(app, update_heartbeat_interval=0.05),
)
