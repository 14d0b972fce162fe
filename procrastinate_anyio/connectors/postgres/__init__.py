"""The PostgreSQL connectors, on psycopg 3: the only package of the library
that imports psycopg.

- :class:`~procrastinate_anyio.PsycopgConnector`: async code, on asyncio
  and Trio, over :class:`ConnectionPool` of :class:`AnyioConnection`
  (psycopg's own async connection does not run on Trio).
- :class:`~procrastinate_anyio.SyncPsycopgConnector`: code without an event
  loop, over ``psycopg_pool``.

Both drive the same operations (``_ops``: generators of named statements from
``sql/queries.sql``).
"""

from __future__ import annotations

from ._async import PsycopgConnector as PsycopgConnector
from ._connection import AnyioConnection as AnyioConnection
from ._connection import connect as connect
from ._pool import ConnectionPool as ConnectionPool
from ._pool import PoolClosed as PoolClosed
from ._pool import PoolStatistics as PoolStatistics
from ._sync import SyncPsycopgConnector as SyncPsycopgConnector

__all__ = [
    "AnyioConnection",
    "ConnectionPool",
    "PoolClosed",
    "PoolStatistics",
    "PsycopgConnector",
    "SyncPsycopgConnector",
    "connect",
]
