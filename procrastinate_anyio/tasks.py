"""Tasks, under Procrastinate's module path (``procrastinate.tasks``)."""

from __future__ import annotations

from ._task import Task as Task

__all__ = ["Task"]
