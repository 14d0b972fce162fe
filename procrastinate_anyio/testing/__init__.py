"""Helpers for your own test suite: an in-memory connector that behaves like
PostgreSQL (the same conformance suite runs against both), and a clock that
stands still until the test moves it.

Example::

    from procrastinate_anyio.testing import InMemoryConnector

    with app.replace_connector(InMemoryConnector()) as app:
        ...
"""

from __future__ import annotations

from ._clock import FakeClock as FakeClock
from ._memory import InMemoryConnector as InMemoryConnector
from ._memory import InMemorySyncConnector as InMemorySyncConnector
from ._store import InMemoryStore as InMemoryStore

__all__ = ["FakeClock", "InMemoryConnector", "InMemoryStore", "InMemorySyncConnector"]
