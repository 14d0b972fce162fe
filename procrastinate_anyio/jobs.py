"""Jobs and their statuses, under Procrastinate's module path (``procrastinate.jobs``)."""

from __future__ import annotations

from ._job import Job as Job
from ._job import JobError as JobError
from ._job import Status as Status
from ._task import DEFAULT_QUEUE as DEFAULT_QUEUE
from .worker._options import DeleteJobs as DeleteJobs

__all__ = ["DEFAULT_QUEUE", "DeleteJobs", "Job", "JobError", "Status"]
