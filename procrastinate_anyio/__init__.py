"""procrastinate_anyio: a PostgreSQL task queue for Python, on AnyIO.

Defer a function call now; a worker runs it elsewhere, now or later. The same
code runs on asyncio and on Trio.
"""

from __future__ import annotations

from ._app import App as App
from ._blueprint import Blueprint as Blueprint
from ._context import JobContext as JobContext
from ._deferrer import JobDeferrer as JobDeferrer
from ._exceptions import AlreadyEnqueued as AlreadyEnqueued
from ._exceptions import AppNotOpen as AppNotOpen
from ._exceptions import ConnectorException as ConnectorException
from ._exceptions import InvalidJobArguments as InvalidJobArguments
from ._exceptions import JobNotFound as JobNotFound
from ._exceptions import JobStateError as JobStateError
from ._exceptions import LoadFromPathError as LoadFromPathError
from ._exceptions import MoveRefused as MoveRefused
from ._exceptions import ProcrastinateException as ProcrastinateException
from ._exceptions import SchemaError as SchemaError
from ._exceptions import TaskAlreadyRegistered as TaskAlreadyRegistered
from ._exceptions import TaskNotFound as TaskNotFound
from ._exceptions import UnboundTaskError as UnboundTaskError
from ._job import Job as Job
from ._job import JobError as JobError
from ._job import Status as Status
from ._job_manager import JobManager as JobManager
from ._limits import QueueLimits as QueueLimits
from ._limits import RateLimit as RateLimit
from ._retry import BaseRetryStrategy as BaseRetryStrategy
from ._retry import RetryDecision as RetryDecision
from ._retry import RetryStrategy as RetryStrategy
from ._schema import SchemaManager as SchemaManager
from ._schema import SchemaStatus as SchemaStatus
from ._task import Task as Task
from ._version import __version__ as __version__
from .connectors._protocols import AsyncConnector as AsyncConnector
from .connectors._protocols import SyncConnector as SyncConnector
from .connectors._types import GroupStats as GroupStats
from .connectors.postgres._async import PsycopgConnector as PsycopgConnector
from .connectors.postgres._sync import SyncPsycopgConnector as SyncPsycopgConnector
from .testing._memory import InMemoryConnector as InMemoryConnector
from .worker._options import DeleteJobs as DeleteJobs
from .worker._options import WorkerOptions as WorkerOptions
from .worker._worker import Worker as Worker
from .worker._worker import WorkerStatistics as WorkerStatistics

__all__ = [
    "AlreadyEnqueued",
    "App",
    "AppNotOpen",
    "AsyncConnector",
    "BaseRetryStrategy",
    "Blueprint",
    "ConnectorException",
    "DeleteJobs",
    "GroupStats",
    "InMemoryConnector",
    "InvalidJobArguments",
    "Job",
    "JobContext",
    "JobDeferrer",
    "JobError",
    "JobManager",
    "JobNotFound",
    "JobStateError",
    "LoadFromPathError",
    "MoveRefused",
    "ProcrastinateException",
    "PsycopgConnector",
    "QueueLimits",
    "RateLimit",
    "RetryDecision",
    "RetryStrategy",
    "SchemaError",
    "SchemaManager",
    "SchemaStatus",
    "Status",
    "SyncConnector",
    "SyncPsycopgConnector",
    "Task",
    "TaskAlreadyRegistered",
    "TaskNotFound",
    "UnboundTaskError",
    "Worker",
    "WorkerOptions",
    "WorkerStatistics",
    "__version__",
]
