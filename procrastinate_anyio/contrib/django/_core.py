"""The one module of the Django integration that imports the core's private
modules: when they move, only these imports change.

Everything else in ``contrib.django`` uses the public API, or these names.
"""

from __future__ import annotations

from procrastinate_anyio._schema import migration_names, read_migrations
from procrastinate_anyio.cli import main as cli_main
from procrastinate_anyio.connectors.postgres import _ops as pg_ops
from procrastinate_anyio.connectors.postgres._ops import in_callers_transaction
from procrastinate_anyio.connectors.postgres._sync import run_operation_sync

__all__ = [
    "cli_main",
    "in_callers_transaction",
    "migration_names",
    "pg_ops",
    "read_migrations",
    "run_operation_sync",
]
