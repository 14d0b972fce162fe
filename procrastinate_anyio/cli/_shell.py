"""``procrastinate-anyio shell``: look at jobs and act on them.

Interactive (a ``cmd.Cmd`` prompt) or one-shot
(``procrastinate-anyio shell list_jobs status=failed``). Filters are
``key=value`` words.
"""

from __future__ import annotations

import cmd
import shlex
from typing import IO, TYPE_CHECKING, Any

from .._exceptions import ProcrastinateException

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from .._job import Job
    from .._job_manager import JobManager
    from ..connectors._types import GroupStats

JOB_FILTERS = (
    "id",
    "queue",
    "task",
    "status",
    "lock",
    "queueing_lock",
    "worker_id",
    "limit",
)
GROUP_FILTERS = ("queue", "task", "status", "lock", "limit")
INT_FILTERS = ("id", "worker_id", "limit")


class ShellError(ProcrastinateException):
    """A shell command was given bad arguments."""


def parse_filters(line: str, allowed: Iterable[str]) -> dict[str, Any]:
    """Parse ``key=value`` words.

    Raises:
        ShellError: an unknown key, a word without ``=``, or a bad number.
    """
    allowed = tuple(allowed)
    filters: dict[str, Any] = {}
    for word in shlex.split(line):
        key, sep, value = word.partition("=")
        if not sep:
            raise ShellError(f"expected key=value, got {word!r}")
        if key not in allowed:
            raise ShellError(
                f"unknown filter {key!r}; use one of: {', '.join(allowed)}"
            )
        if key in INT_FILTERS:
            try:
                filters[key] = int(value)
            except ValueError:
                raise ShellError(f"{key} must be an integer, not {value!r}") from None
        else:
            filters[key] = value
    return filters


def format_job(job: Job, *, details: bool = False) -> str:
    line = f"#{job.id} {job.task_name} on {job.queue} - [{job.status.value}]"
    if details:
        line += (
            f" (attempts={job.attempts}, priority={job.priority}, lock={job.lock}, "
            f"queueing_lock={job.queueing_lock}, scheduled_at={job.scheduled_at}, "
            f"args={dict(job.task_kwargs)}, result={job.result!r}"
        )
        if job.error is not None:
            line += f", error={job.error.type}: {job.error.message}"
        line += ")"
    return line


def format_group(group: GroupStats) -> str:
    return (
        f"{group.name}: {group.jobs_count} jobs (todo: {group.todo}, doing: {group.doing}, "
        f"succeeded: {group.succeeded}, failed: {group.failed}, "
        f"cancelled: {group.cancelled}, aborted: {group.aborted})"
    )


def _job_id(line: str) -> int:
    words = line.split()
    if len(words) != 1 or not words[0].isdigit():
        raise ShellError(f"expected one job id, got {line!r}")
    return int(words[0])


class Shell(cmd.Cmd):
    """The interactive shell over a job manager (sync API: the app must be
    open with ``app.open()``)."""

    intro = (
        "Welcome to the procrastinate_anyio shell. Type help or ? to list commands.\n"
    )
    prompt = "procrastinate_anyio> "

    def __init__(self, job_manager: JobManager, stdout: IO[str] | None = None) -> None:
        super().__init__(stdout=stdout)
        self.job_manager = job_manager
        self.failed = False  # the last command failed (the one-shot exit code)

    def _print(self, text: str) -> None:
        self.stdout.write(text + "\n")

    def onecmd(self, line: str) -> bool:
        self.failed = False
        try:
            return super().onecmd(line)
        except (ProcrastinateException, ValueError) as exc:
            self._print(f"Error: {exc}")
            self.failed = True
            return False

    def default(self, line: str) -> None:
        self.failed = True
        self._print(
            f"Unknown command: {line.split()[0] if line.split() else line!r}; type help"
        )

    def emptyline(self) -> bool:
        return False

    def do_exit(self, _: str) -> bool:
        """Exit the shell."""
        return True

    do_EOF = do_exit

    def do_list_jobs(self, line: str) -> None:
        """List jobs: list_jobs [id=] [queue=] [task=] [status=] [lock=]
        [queueing_lock=] [worker_id=] [limit=] [details]"""
        details = False
        words = shlex.split(line)
        if "details" in words:
            details = True
            words.remove("details")
        filters = parse_filters(shlex.join(words), JOB_FILTERS)
        for job in self.job_manager.list_jobs(**filters):
            self._print(format_job(job, details=details))

    def _groups(self, lister: Callable[..., list[GroupStats]], line: str) -> None:
        for group in lister(**parse_filters(line, GROUP_FILTERS)):
            self._print(format_group(group))

    def do_list_queues(self, line: str) -> None:
        """Job counts per queue: list_queues [queue=] [task=] [status=] [lock=]"""
        self._groups(self.job_manager.list_queues, line)

    def do_list_tasks(self, line: str) -> None:
        """Job counts per task: list_tasks [queue=] [task=] [status=] [lock=]"""
        self._groups(self.job_manager.list_tasks, line)

    def do_list_locks(self, line: str) -> None:
        """Job counts per lock: list_locks [queue=] [task=] [status=] [lock=]"""
        self._groups(self.job_manager.list_locks, line)

    def do_retry(self, line: str) -> None:
        """Retry a failed, aborted or cancelled job now: retry JOB_ID"""
        job_id = _job_id(line)
        self.job_manager.retry_job_by_id(job_id)
        job = self.job_manager.get_job(job_id)
        if job is not None:
            self._print(format_job(job))

    def do_cancel(self, line: str) -> None:
        """Cancel a job that has not started: cancel JOB_ID"""
        job_id = _job_id(line)
        if self.job_manager.cancel_job_by_id(job_id):
            self._print(f"#{job_id}: cancelled")
        else:
            self._print(f"#{job_id}: not cancelled (not found, running or finished)")

    def do_abort(self, line: str) -> None:
        """Cancel a job, or ask a running one to stop: abort JOB_ID"""
        job_id = _job_id(line)
        if self.job_manager.cancel_job_by_id(job_id, abort=True):
            self._print(f"#{job_id}: abort requested")
        else:
            self._print(f"#{job_id}: not aborted (not found or finished)")
