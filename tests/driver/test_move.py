"""Conformance: ``job_move_from_procrastinate`` where Procrastinate's tables
are absent (always so in memory): refused, nothing written. The move itself,
on Procrastinate's real tables, is tested in
``tests/integration/test_move_from_procrastinate.py``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from procrastinate_anyio import InMemoryConnector, MoveRefused, PsycopgConnector
from procrastinate_anyio.connectors import JobFilter, MoveParams

if TYPE_CHECKING:
    from procrastinate_anyio.connectors import AsyncConnector
    from tests.conftest import DatabaseFactory

    from .conftest import JobFactory

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "params",
    [
        pytest.param(MoveParams(), id="move"),
        pytest.param(MoveParams(dry_run=True, force=True), id="dry-run"),
    ],
)
async def test_refused_without_procrastinate_tables(
    connector: AsyncConnector, jobs: JobFactory, params: MoveParams
) -> None:
    """Without Procrastinate's tables the move is refused, and says so."""
    job_id = await jobs.defer()

    with pytest.raises(MoveRefused, match="Procrastinate's tables are absent"):
        await connector.job_move_from_procrastinate(params)

    assert [job.id for job in await connector.job_list(JobFilter())] == [job_id]


@pytest.mark.parametrize("name", ["memory", "postgres"])
async def test_refused_without_our_schema(
    name: str, new_database: DatabaseFactory
) -> None:
    """Without our schema, the move asks for ``schema --apply`` first."""
    connector: AsyncConnector = (
        InMemoryConnector() if name == "memory" else PsycopgConnector(new_database())
    )
    await connector.open_async()
    try:
        with pytest.raises(MoveRefused, match="schema --apply"):
            await connector.job_move_from_procrastinate(MoveParams())
    finally:
        await connector.close_async()


def test_params_checked() -> None:
    """A worker timeout must be positive."""
    with pytest.raises(ValueError, match="worker_timeout must be positive"):
        MoveParams(worker_timeout=0)
