"""The exceptions, under Procrastinate's module path (``procrastinate.exceptions``)."""

from __future__ import annotations

from ._exceptions import AlreadyEnqueued as AlreadyEnqueued
from ._exceptions import AppNotOpen as AppNotOpen
from ._exceptions import ConnectorException as ConnectorException
from ._exceptions import InvalidJobArguments as InvalidJobArguments
from ._exceptions import JobAborted as JobAborted
from ._exceptions import JobNotFound as JobNotFound
from ._exceptions import JobStateError as JobStateError
from ._exceptions import LoadFromPathError as LoadFromPathError
from ._exceptions import MiddlewareKindMismatch as MiddlewareKindMismatch
from ._exceptions import MoveRefused as MoveRefused
from ._exceptions import ProcrastinateException as ProcrastinateException
from ._exceptions import SchemaError as SchemaError
from ._exceptions import TaskAlreadyRegistered as TaskAlreadyRegistered
from ._exceptions import TaskNotFound as TaskNotFound
from ._exceptions import UnboundTaskError as UnboundTaskError

__all__ = [
    "AlreadyEnqueued",
    "AppNotOpen",
    "ConnectorException",
    "InvalidJobArguments",
    "JobAborted",
    "JobNotFound",
    "JobStateError",
    "LoadFromPathError",
    "MiddlewareKindMismatch",
    "MoveRefused",
    "ProcrastinateException",
    "SchemaError",
    "TaskAlreadyRegistered",
    "TaskNotFound",
    "UnboundTaskError",
]
