"""The worker's settings, validated at construction."""

from __future__ import annotations

import enum
import os
import socket
from typing import TYPE_CHECKING, Any

import attrs

from .._middleware import check_worker_middleware, check_worker_task_middleware
from .._validation import check_name

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


class DeleteJobs(str, enum.Enum):
    """Which finished jobs the worker deletes instead of keeping."""

    NEVER = "never"
    SUCCESSFUL = "successful"
    ALWAYS = "always"


def _positive(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{attribute.name} must be positive, not {value!r}")


def _queues(value: Sequence[str] | str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    queues = tuple(check_name("queue", queue) for queue in value)
    return queues or None


def _default_name() -> str:
    return f"worker-{socket.gethostname()}-{os.getpid()}"


@attrs.frozen(kw_only=True)
class WorkerOptions:
    """A worker's settings, validated at construction.

    Attributes:
        queues: the queues to take jobs from (None or empty: all).
        name: the worker's name in logs and in the workers table.
        concurrency: how many jobs run at once.
        wait: False to stop once no job is left (one-shot).
        fetch_job_polling_interval: seconds between fetches when idle, the
            fallback when no notification arrives.
        abort_job_polling_interval: seconds between checks for abort requests
            (notifications deliver them at once when listening).
        shutdown_graceful_timeout: seconds running jobs get to finish after a
            stop request before they are cancelled (None: no limit).
        listen_notify: use LISTEN/NOTIFY (False: polling only, e.g. behind a
            PgBouncer in transaction mode).
        delete_jobs: delete finished jobs: never, successful ones, or always.
        additional_context: passed to tasks in ``JobContext.additional_context``.
        install_signal_handlers: stop on SIGINT/SIGTERM (main thread only).
        update_heartbeat_interval: seconds between heartbeats.
        stalled_worker_timeout: seconds without heartbeat after which a worker
            counts as dead.
        max_crash_recoveries: how many times a job whose worker died while
            running it is brought back (to ``todo``, without asking its retry
            strategy); the next such crash fails it. 0: the first crash fails
            the job.
        fetch_batch_size: most jobs claimed per statement.
        prefetch: most jobs claimed ahead of the free slots while jobs are
            short (they wait in this worker, ``doing`` in the database, and
            start as slots free up; at most about 50 ms of work at the recent
            pace); 0: claim only for free slots. Off under global limits and
            with ``max_crash_recoveries=0``.
        completer_batch_size: most outcomes written per statement.
        completer_flush_interval: seconds the completer gathers outcomes.
        completer_buffer_size: outcomes that may wait to be written before
            finished jobs wait for the completer.
        task_middleware: task middleware for every task (each wraps the
            tasks of its kind, sync or async), around the tasks' own.
        worker_middleware: async middleware around every job, outermost.
    """

    queues: tuple[str, ...] | None = attrs.field(default=None, converter=_queues)
    name: str = attrs.field(factory=_default_name)
    concurrency: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    wait: bool = True
    fetch_job_polling_interval: float = attrs.field(default=5.0, validator=_positive)
    abort_job_polling_interval: float = attrs.field(default=5.0, validator=_positive)
    shutdown_graceful_timeout: float | None = attrs.field(
        default=30.0, validator=_positive
    )
    listen_notify: bool = True
    delete_jobs: DeleteJobs = attrs.field(
        default=DeleteJobs.NEVER, converter=DeleteJobs
    )
    additional_context: Mapping[str, Any] = attrs.field(factory=dict)
    install_signal_handlers: bool = True
    update_heartbeat_interval: float = attrs.field(default=10.0, validator=_positive)
    stalled_worker_timeout: float = attrs.field(default=30.0, validator=_positive)
    max_crash_recoveries: int = attrs.field(default=3, validator=attrs.validators.ge(0))
    fetch_batch_size: int = attrs.field(default=100, validator=attrs.validators.ge(1))
    prefetch: int = attrs.field(default=50, validator=attrs.validators.ge(0))
    completer_batch_size: int = attrs.field(
        default=500, validator=attrs.validators.ge(1)
    )
    completer_flush_interval: float = attrs.field(default=0.002, validator=_positive)
    completer_buffer_size: int = attrs.field(
        default=1000, validator=attrs.validators.ge(1)
    )
    task_middleware: tuple[Any, ...] = attrs.field(
        default=(), converter=check_worker_task_middleware
    )
    worker_middleware: tuple[Any, ...] = attrs.field(
        default=(), converter=check_worker_middleware
    )

    def __attrs_post_init__(self) -> None:
        check_name("worker name", self.name)
        if self.stalled_worker_timeout <= self.update_heartbeat_interval:
            raise ValueError(
                "stalled_worker_timeout must be longer than update_heartbeat_interval"
            )
