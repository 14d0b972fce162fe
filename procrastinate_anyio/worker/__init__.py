"""The worker: one AnyIO task group that fetches jobs and runs them (see
``worker/_worker.py`` for its tree). Each child of the task group has a
module of its own here."""

from __future__ import annotations

from ._options import DeleteJobs as DeleteJobs
from ._options import WorkerOptions as WorkerOptions
from ._worker import Worker as Worker
from ._worker import WorkerStatistics as WorkerStatistics

__all__ = ["DeleteJobs", "Worker", "WorkerOptions", "WorkerStatistics"]
