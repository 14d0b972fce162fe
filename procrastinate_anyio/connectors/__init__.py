"""The driver seam: what the library needs from a storage backend.

:class:`~procrastinate_anyio.AsyncConnector` and
:class:`~procrastinate_anyio.SyncConnector` are the protocols; the
records below are what their operations take and return. The PostgreSQL
implementations live in :mod:`procrastinate_anyio.connectors.postgres`, the
in-memory one in :mod:`procrastinate_anyio.testing`.
"""

from __future__ import annotations

from .._limits import Limit as Limit
from ._protocols import AsyncConnector as AsyncConnector
from ._protocols import SyncConnector as SyncConnector
from ._types import CancelParams as CancelParams
from ._types import DeleteOldParams as DeleteOldParams
from ._types import FetchParams as FetchParams
from ._types import GroupStats as GroupStats
from ._types import JobFilter as JobFilter
from ._types import JobOutcome as JobOutcome
from ._types import MaintenanceParams as MaintenanceParams
from ._types import MaintenanceResult as MaintenanceResult
from ._types import MoveParams as MoveParams
from ._types import MoveSkip as MoveSkip
from ._types import Notification as Notification
from ._types import PausedQueue as PausedQueue
from ._types import PeriodicDeferParams as PeriodicDeferParams
from ._types import ProcrastinateMove as ProcrastinateMove
from ._types import RetryParams as RetryParams
from ._types import StalledJobs as StalledJobs

__all__ = [
    "AsyncConnector",
    "CancelParams",
    "DeleteOldParams",
    "FetchParams",
    "GroupStats",
    "JobFilter",
    "JobOutcome",
    "Limit",
    "MaintenanceParams",
    "MaintenanceResult",
    "MoveParams",
    "MoveSkip",
    "Notification",
    "PausedQueue",
    "PeriodicDeferParams",
    "ProcrastinateMove",
    "RetryParams",
    "StalledJobs",
    "SyncConnector",
]
