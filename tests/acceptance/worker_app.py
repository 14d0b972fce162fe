"""The app that ``test_worker_signals.py`` runs in a worker subprocess:
``--app tests.acceptance.worker_app.app``. Its database comes from
``PA_WORKER_TEST_DSN``."""

from __future__ import annotations

import os
import time

import anyio

import procrastinate_anyio as pa

app = pa.App(connector=pa.PsycopgConnector(os.environ.get("PA_WORKER_TEST_DSN", "")))


@app.task(name="forever")
async def forever() -> None:
    await anyio.sleep_forever()


@app.task(name="forever_retry", retry=True)
async def forever_retry() -> None:
    await anyio.sleep_forever()


@app.task(name="forever_sync", pass_context=True)
def forever_sync(context: pa.JobContext) -> None:
    while not context.should_abort():
        time.sleep(0.01)


@app.task(name="wait_for_file")
async def wait_for_file(path: str) -> str:
    """Ends once ``path`` exists: the test decides when."""
    while not await anyio.Path(path).exists():  # noqa: ASYNC110  # no event crosses processes
        await anyio.sleep(0.01)
    return "done"
