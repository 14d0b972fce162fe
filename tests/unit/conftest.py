"""Fixtures of the unit tests: an App on an in-memory connector, no sockets."""

from __future__ import annotations

import datetime

import pytest

from procrastinate_anyio import App, InMemoryConnector, Job

NOW = datetime.datetime(2030, 6, 1, 12, 0, tzinfo=datetime.timezone.utc)


@pytest.fixture
def connector() -> InMemoryConnector:
    return InMemoryConnector()


@pytest.fixture
def app(connector: InMemoryConnector) -> App:
    """An app on the in-memory connector, not open."""
    return App(connector=connector)


def stored_jobs(connector: InMemoryConnector) -> list[Job]:
    """Every job the connector holds, by id."""
    return [row.job for _, row in sorted(connector.store.rows.items())]
