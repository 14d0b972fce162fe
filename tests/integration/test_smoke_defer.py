from __future__ import annotations

import pytest

import procrastinate_anyio as pa

pytestmark = pytest.mark.anyio


async def test_defer_and_list(pg_connector: pa.PsycopgConnector) -> None:
    """A deferred job can be read back."""
    app = pa.App(connector=pg_connector)

    @app.task(name="sum")
    async def add(a: int, b: int) -> int:
        return a + b

    job_id = await add.defer_async(a=1, b=2)
    job = await app.job_manager.get_job_async(job_id)
    assert job is not None
    assert job.task_kwargs == {"a": 1, "b": 2}
