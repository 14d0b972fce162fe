"""What a running task sees, under Procrastinate's module path (``procrastinate.job_context``)."""

from __future__ import annotations

from ._context import JobContext as JobContext

__all__ = ["JobContext"]
