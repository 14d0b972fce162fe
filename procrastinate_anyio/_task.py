"""A task: a function registered under a name, and the options its jobs get."""

from __future__ import annotations

import datetime
import inspect
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from typing_extensions import ParamSpec

from ._deferrer import _UNSET, JobDeferrer, JobTemplate, signature_checker
from ._limits import RateLimit, check_concurrency_limit, check_rate_limit
from ._middleware import check_task_middleware
from ._retry import BaseRetryStrategy, RetryValue, get_retry_strategy
from ._validation import check_name

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from ._job_manager import JobManager
    from ._middleware import TaskMiddleware

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_QUEUE = "default"


class TaskOwner(Protocol):
    """What a task uses of the blueprint (or app) it was declared on."""

    @property
    def job_manager(self) -> JobManager: ...


class TaskRegistry(Protocol):
    """Finds the task of a job (by name or alias): what the worker needs of
    an app."""

    def get_task(self, name: str) -> Task[Any, Any]:
        """Raises TaskNotFound when no task has this name or alias."""
        ...


class Task(Generic[P, R]):
    """A function that workers run as jobs. Made by ``@app.task``.

    Calling the task calls the function directly; ``defer``/``defer_async``
    write a job instead.
    """

    def __init__(
        self,
        func: Callable[P, R],
        *,
        blueprint: TaskOwner,
        name: str | None = None,
        aliases: list[str] | None = None,
        queue: str = DEFAULT_QUEUE,
        priority: int = 0,
        lock: str | None = None,
        queueing_lock: str | None = None,
        retry: RetryValue = False,
        pass_context: bool = False,
        timeout: float | datetime.timedelta | None = None,
        concurrency_limit: int | None = None,
        rate_limit: str | RateLimit | None = None,
        task_middleware: Sequence[TaskMiddleware] | None = None,
    ) -> None:
        if not callable(func):
            raise TypeError(f"a task must be a function, not {func!r}")
        self.func = func
        self.blueprint = blueprint
        self.name = check_name(
            "task name", _default_name(func) if name is None else name
        )
        self.aliases = [check_name("task alias", alias) for alias in aliases or []]
        self.queue = check_name("queue", queue)
        self.priority = priority
        self.lock = lock
        self.queueing_lock = queueing_lock
        self.retry_strategy: BaseRetryStrategy | None = get_retry_strategy(retry)
        self.pass_context = pass_context
        self.timeout = _timeout_seconds(timeout)
        self.concurrency_limit = check_concurrency_limit(concurrency_limit)
        self.rate_limit = check_rate_limit(rate_limit)
        self.is_async = inspect.iscoroutinefunction(func)
        self.middleware = check_task_middleware(
            self.name, self.is_async, task_middleware
        )
        self._check_signature = signature_checker(
            func, task_name=self.name, pass_context=pass_context
        )
        # Validates priority, lock and queueing_lock at declaration.
        self._template()

    def __repr__(self) -> str:
        return f"Task({self.name!r}, queue={self.queue!r})"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    def add_namespace(self, namespace: str) -> None:
        """Prefix the task's name and aliases with ``namespace:``."""
        self.name = check_name("task name", f"{namespace}:{self.name}")
        self.aliases = [
            check_name("task alias", f"{namespace}:{a}") for a in self.aliases
        ]

    def _template(self) -> JobTemplate:
        return JobTemplate(
            task_name=self.name,
            queue=self.queue,
            priority=self.priority,
            lock=self.lock,
            queueing_lock=self.queueing_lock,
            check_signature=self._check_signature,
        )

    def configure(
        self,
        *,
        lock: str | None = _UNSET,
        queueing_lock: str | None = _UNSET,
        task_kwargs: Mapping[str, Any] | None = None,
        schedule_at: datetime.datetime | None = None,
        schedule_in: Mapping[str, float] | datetime.timedelta | None = None,
        priority: int = _UNSET,
        queue: str = _UNSET,
        connection: Any = None,
    ) -> JobDeferrer:
        """Options for the next jobs, overriding the task's.

        Args:
            lock: at most one job with this lock runs at a time.
            queueing_lock: at most one job with this value waits at a time;
                deferring another raises :class:`AlreadyEnqueued`.
            task_kwargs: arguments merged under the ones given to ``defer``.
            schedule_at: do not start before this aware datetime.
            schedule_in: do not start before this delay, as a timedelta or
                its keywords (``{"seconds": 10}``).
            priority: higher runs first.
            queue: the queue to defer to.
            connection: defer within this psycopg connection's current
                transaction (transactional defer): rolled back, no job;
                committed, the job exists and workers wake up.

        Raises:
            ValueError, TypeError: an option is invalid (a naive
                ``schedule_at``, both ``schedule_at`` and ``schedule_in``...).
        """
        template = self.job_template(
            lock=lock,
            queueing_lock=queueing_lock,
            task_kwargs=task_kwargs,
            schedule_at=schedule_at,
            schedule_in=schedule_in,
            priority=priority,
            queue=queue,
        )
        return JobDeferrer(self.blueprint.job_manager, template, connection=connection)

    def job_template(
        self,
        *,
        lock: str | None = _UNSET,
        queueing_lock: str | None = _UNSET,
        task_kwargs: Mapping[str, Any] | None = None,
        schedule_at: datetime.datetime | None = None,
        schedule_in: Mapping[str, float] | datetime.timedelta | None = None,
        priority: int = _UNSET,
        queue: str = _UNSET,
    ) -> JobTemplate:
        """The options of :meth:`configure`, validated, as a template of jobs;
        it needs no app (a periodic schedule is declared with it, on a
        blueprint not added to an app yet).

        Raises:
            ValueError, TypeError: an option is invalid.
        """
        return self._template().evolve(
            lock=lock,
            queueing_lock=queueing_lock,
            task_kwargs=dict(task_kwargs or {}),
            schedule_at=schedule_at,
            schedule_in=schedule_in,
            priority=priority,
            queue=queue,
        )

    async def defer_async(self, **task_kwargs: Any) -> int:
        """Defer a job of this task with the task's options; returns its id.

        Raises:
            InvalidJobArguments: the arguments do not fit the function or are
                not JSON-serialisable (nothing is written).
            AlreadyEnqueued: the task's queueing lock is taken.
        """
        return await self.configure().defer_async(**task_kwargs)

    def defer(self, **task_kwargs: Any) -> int:
        """The sync twin of :meth:`defer_async`, for code with no event loop."""
        return self.configure().defer(**task_kwargs)

    async def batch_defer_async(self, *task_kwargs: Mapping[str, Any]) -> list[int]:
        """Defer one job per mapping, all or none; returns the ids in order."""
        return await self.configure().batch_defer_async(*task_kwargs)

    def batch_defer(self, *task_kwargs: Mapping[str, Any]) -> list[int]:
        """The sync twin of :meth:`batch_defer_async`."""
        return self.configure().batch_defer(*task_kwargs)


def _default_name(func: Callable[..., Any]) -> str:
    return f"{func.__module__}.{func.__qualname__}"


def _timeout_seconds(timeout: float | datetime.timedelta | None) -> float | None:
    if timeout is None:
        return None
    seconds = (
        timeout.total_seconds() if isinstance(timeout, datetime.timedelta) else timeout
    )
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or seconds <= 0
    ):
        raise ValueError(
            f"timeout must be a positive number of seconds, not {timeout!r}"
        )
    return float(seconds)
