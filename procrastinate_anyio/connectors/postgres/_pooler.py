"""Running behind a connection pooler (PgBouncer and the like).

In transaction mode a pooler hands each transaction to whichever server
connection is free. Two things break: psycopg's prepared statements (a
statement prepared on one server connection is executed on another, or
prepared twice) and LISTEN (notifications reach a server connection that
no longer belongs to the listener). The connectors avoid the first and
refuse the second with a clear error:

- prepared statements: unless ``connect_kwargs`` sets ``prepare_threshold``,
  the first connection checks whether a pooler sits in between (the backend
  key the pooler gave the client is not the server process's pid); if one
  does, every connection runs with ``prepare_threshold=None``. One query per
  connector, none per job.
- LISTEN: after LISTEN, a notification is sent from another connection and
  must arrive within ``LISTEN_PROBE_TIMEOUT_SECONDS``; otherwise listening
  fails with :data:`LISTEN_UNSUPPORTED`, which the listener logs at every
  retry, while the worker keeps working by polling.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from . import _ops

if TYPE_CHECKING:
    import psycopg

    from ._connection import AnyioConnection

logger = logging.getLogger("procrastinate_anyio.pg")

LISTEN_PROBE_TIMEOUT_SECONDS: Final = 5.0

LISTEN_UNSUPPORTED: Final = (
    "LISTEN does not work on this connection: a notification sent right after "
    "LISTEN never arrived. Behind PgBouncer in transaction mode, run the worker "
    "with listen_notify=False (it polls), or give it a direct connection"
)


class PoolerDetection:
    """Decides, once per connector, whether prepared statements are off.

    Args:
        connect_kwargs: the connector's; an explicit ``prepare_threshold``
            wins and nothing is detected.
    """

    def __init__(self, connect_kwargs: dict[str, Any]) -> None:
        self.explicit = "prepare_threshold" in connect_kwargs
        self.behind_pooler: bool | None = None

    def _decide(self, server_pid: int, client_pid: int) -> None:
        self.behind_pooler = server_pid != client_pid
        if self.behind_pooler:
            logger.info(
                "A connection pooler sits between this process and PostgreSQL: "
                "prepared statements are off (set prepare_threshold in "
                "connect_kwargs to decide yourself)",
                extra={"action": "pooler_detected"},
            )

    async def configure_async(self, conn: AnyioConnection[Any]) -> None:
        """Run on each new connection of the async pool."""
        if self.explicit:
            return
        if self.behind_pooler is None:
            query = _ops.Statement("connection_backend_pid").query()
            row = await (await conn.execute(query)).fetchone()
            assert row is not None  # one row, always
            self._decide(_pid_of(row), conn.pgconn.backend_pid)
        if self.behind_pooler:
            conn.prepare_threshold = None

    def configure_sync(self, conn: psycopg.Connection[Any]) -> None:
        """Run on each new connection of the sync pool."""
        if self.explicit:
            return
        if self.behind_pooler is None:
            query = _ops.Statement("connection_backend_pid").query()
            row = conn.execute(query).fetchone()
            assert row is not None  # one row, always
            self._decide(_pid_of(row), conn.pgconn.backend_pid)
        if self.behind_pooler:
            conn.prepare_threshold = None


def _pid_of(row: Any) -> int:
    pid: int = row["pid"] if isinstance(row, dict) else row[0]
    return pid
