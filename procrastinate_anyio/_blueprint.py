"""A registry of tasks. An :class:`~procrastinate_anyio.App` is a blueprint
bound to a connector; a plain blueprint collects tasks in a library before
any app exists, and an app adopts them with ``add_tasks_from``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, overload

from typing_extensions import ParamSpec

from ._exceptions import TaskAlreadyRegistered, TaskNotFound, UnboundTaskError
from ._periodic import PeriodicTask, make_periodic_task
from ._task import DEFAULT_QUEUE, Task

if TYPE_CHECKING:
    import datetime
    from collections.abc import Callable, Sequence

    from ._job_manager import JobManager
    from ._middleware import TaskMiddleware
    from ._retry import RetryValue

P = ParamSpec("P")
R = TypeVar("R")


class Blueprint:
    """A set of tasks, not yet bound to a database.

    Example::

        bp = Blueprint()

        @bp.task(queue="emails")
        async def send(to: str) -> None: ...

        app.add_tasks_from(bp, namespace="mail")   # task name "mail:...send"
    """

    def __init__(self) -> None:
        self.tasks: dict[str, Task[Any, Any]] = {}
        self.periodic_tasks: list[PeriodicTask] = []
        self._aliases: dict[str, Task[Any, Any]] = {}
        self._parent: Blueprint | None = None

    @property
    def job_manager(self) -> JobManager:
        """The job manager of the app this blueprint was added to.

        Raises:
            UnboundTaskError: the blueprint was not added to an app.
        """
        if self._parent is None:
            raise UnboundTaskError(
                "This blueprint's tasks cannot defer jobs before the blueprint is "
                "added to an App: app.add_tasks_from(blueprint, namespace=...)"
            )
        return self._parent.job_manager

    @overload
    def task(self, func: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(
        self,
        func: None = None,
        /,
        *,
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
        rate_limit: str | None = None,
        task_middleware: Sequence[TaskMiddleware] | None = None,
    ) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(  # the overloads above are what callers see
        self,
        func: Callable[..., Any] | None = None,
        /,
        *,
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
        rate_limit: str | None = None,
        task_middleware: Sequence[TaskMiddleware] | None = None,
    ) -> Any:
        """Register a function as a task; usable bare (``@app.task``) or with
        options (``@app.task(queue="sums")``).

        Args:
            name: the name jobs refer to (default: ``module.qualname``).
            aliases: other names that also resolve to this task (to rename
                a task without stranding the jobs already deferred).
            queue: the default queue of its jobs.
            priority: the default priority (higher first).
            lock: the default lock.
            queueing_lock: the default queueing lock.
            retry: ``False``, ``True``, a number of retries or a strategy.
            pass_context: call the function with a ``JobContext`` first.
            timeout: seconds (or timedelta) after which an attempt is
                cancelled and counts as failed.
            concurrency_limit: at most this many of its jobs run at once,
                across every worker.
            rate_limit: at most this many of its jobs start per second,
                minute or hour, across every worker: ``"10/s"``, ``"100/m"``,
                ``"5/h"``.
            task_middleware: callables ``(call_next, context, worker)``
                around each run, of the task's kind (sync or async).

        Raises:
            ValueError, TypeError: an invalid option (at declaration).
        """

        def decorate(f: Callable[..., Any]) -> Task[Any, Any]:
            task = Task(
                f,
                blueprint=self,
                name=name,
                aliases=aliases,
                queue=queue,
                priority=priority,
                lock=lock,
                queueing_lock=queueing_lock,
                retry=retry,
                pass_context=pass_context,
                timeout=timeout,
                concurrency_limit=concurrency_limit,
                rate_limit=rate_limit,
                task_middleware=task_middleware,
            )
            self._register_task(task)
            return task

        if func is not None:
            return decorate(func)
        return decorate

    def periodic(
        self, *, cron: str, periodic_id: str = "", **configure_kwargs: Any
    ) -> Callable[[Task[P, R]], Task[P, R]]:
        """Defer a job of the decorated task on a cron schedule, exactly once
        per tick however many workers run. Put it above ``@app.task``::

            @app.periodic(cron="*/5 * * * *")
            @app.task
            async def cleanup(timestamp: int) -> None: ...

        The task receives ``timestamp``: the tick, in seconds since the epoch.

        Args:
            cron: 5 fields (minute hour day month weekday), or 6 with seconds last.
            periodic_id: tells apart several schedules of one task.
            **configure_kwargs: options of ``task.configure()`` for its jobs.

        Raises:
            ValueError: the cron expression or an option is invalid (at
                declaration, not at the first tick).
        """

        def decorate(task: Task[P, R]) -> Task[P, R]:
            if not isinstance(task, Task):
                raise TypeError("@periodic decorates a task: put it above @app.task")
            periodic = make_periodic_task(
                task,
                cron=cron,
                periodic_id=periodic_id,
                configure_kwargs=configure_kwargs,
            )
            if any(
                p.task is task and p.periodic_id == periodic_id
                for p in self.periodic_tasks
            ):
                raise TaskAlreadyRegistered(
                    f"Task {task.name!r} already has a schedule with periodic_id {periodic_id!r}"
                )
            # Declared after the blueprint was added: its app runs it too.
            blueprint: Blueprint | None = self
            while blueprint is not None:
                blueprint.periodic_tasks.append(periodic)
                blueprint = blueprint._parent
            return task

        return decorate

    def _register_task(self, task: Task[Any, Any]) -> None:
        for name in (task.name, *task.aliases):
            existing = self.tasks.get(name) or self._aliases.get(name)
            if existing is not None and existing is not task:
                raise TaskAlreadyRegistered(
                    f"A task is already registered under the name {name!r}"
                )
        self.tasks[task.name] = task
        for alias in task.aliases:
            self._aliases[alias] = task

    def add_tasks_from(self, blueprint: Blueprint, *, namespace: str) -> None:
        """Adopt the tasks of ``blueprint``, renamed ``namespace:name``.

        Raises:
            TaskAlreadyRegistered: a renamed task clashes with one of ours.
        """
        if blueprint is self:
            raise ValueError("a blueprint cannot add its own tasks")
        if blueprint._parent is not None:
            raise ValueError("this blueprint was already added elsewhere")
        if not namespace or ":" in namespace:
            raise ValueError(
                f"namespace must be a non-empty name without ':', not {namespace!r}"
            )
        for task in blueprint.tasks.values():
            for name in (task.name, *task.aliases):
                new_name = f"{namespace}:{name}"
                if new_name in self.tasks or new_name in self._aliases:
                    raise TaskAlreadyRegistered(
                        f"A task is already registered under the name {new_name!r}"
                    )
        for task in list(blueprint.tasks.values()):
            task.add_namespace(namespace)
            self._register_task(task)
        blueprint.tasks = {task.name: task for task in blueprint.tasks.values()}
        blueprint._aliases = {
            alias: task for task in blueprint.tasks.values() for alias in task.aliases
        }
        self.periodic_tasks.extend(blueprint.periodic_tasks)
        blueprint._parent = self

    def get_task(self, name: str) -> Task[Any, Any]:
        """The task registered under ``name`` or one of its aliases.

        Raises:
            TaskNotFound: no such task.
        """
        task = self.tasks.get(name) or self._aliases.get(name)
        if task is None:
            raise TaskNotFound(f"No task named {name!r} is registered")
        return task
