"""The job manager, under Procrastinate's module path (``procrastinate.manager``)."""

from __future__ import annotations

from ._job_manager import JobManager as JobManager

__all__ = ["JobManager"]
