"""The schema manager, under Procrastinate's module path (``procrastinate.schema``)."""

from __future__ import annotations

from ._schema import SchemaManager as SchemaManager
from ._schema import SchemaStatus as SchemaStatus

__all__ = ["SchemaManager", "SchemaStatus"]
