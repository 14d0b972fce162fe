"""A backend of Django's tasks framework (``django.tasks``, Django 6.0+):
``TASKS = {"default": {"BACKEND": "procrastinate_anyio.contrib.django.TaskBackend"}}``.

Each ``@task`` function of Django's becomes a task of the Django app, named
by its ``module_path``, whose job arguments are ``{"args": [...], "kwargs":
{...}}``. A worker resolves those names itself (importing the module when it
has to), so Django tasks need no registration of their own. A job's id is
the ``TaskResult`` id; ``get_result`` reads the job back.
"""

from __future__ import annotations

import inspect
import threading
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.conf import settings
from django.tasks import TaskContext, TaskResult, TaskResultStatus
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.base import Task as DjangoTask
from django.tasks.base import TaskError
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.utils import timezone
from django.utils.json import normalize_json
from django.utils.module_loading import import_string

from procrastinate_anyio import Status

if TYPE_CHECKING:
    from procrastinate_anyio import App, Job, JobContext, Task


_STATUSES = {
    Status.TODO: TaskResultStatus.READY,
    Status.DOING: TaskResultStatus.RUNNING,
    Status.SUCCEEDED: TaskResultStatus.SUCCESSFUL,
    Status.FAILED: TaskResultStatus.FAILED,
    Status.CANCELLED: TaskResultStatus.FAILED,
    Status.ABORTED: TaskResultStatus.FAILED,
}
_MAX_NAME_LENGTH = 255
_registering = threading.Lock()


def _app() -> App:
    """The project's App, kept by the Django app config once Django is ready
    (not imported from the package: the package imports this module)."""
    config = apps.get_app_config("procrastinate_anyio")
    app: App = config.app  # set in ready()
    return app


class TaskBackend(BaseTaskBackend):
    """Runs Django tasks as procrastinate_anyio jobs, in the database of
    ``PROCRASTINATE_ANYIO_DATABASE_ALIAS``.

    ``priority`` (-100 to 100) is the job's priority (higher first),
    ``queue_name`` its queue, ``run_after`` its earliest start. A job that
    is cancelled or aborted reads as ``FAILED``.
    """

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def validate_task(self, task: DjangoTask) -> None:
        """Django's checks, and the names and options jobs need.

        Raises:
            InvalidTask: the task cannot run on this backend (the message
                says why).
        """
        super().validate_task(task)
        if len(task.module_path) > _MAX_NAME_LENGTH:
            raise InvalidTask(
                f"The task's path is longer than {_MAX_NAME_LENGTH} characters: "
                f"{task.module_path[:40]!r}..."
            )
        if not task.queue_name or len(task.queue_name) > _MAX_NAME_LENGTH:
            raise InvalidTask(
                f"queue_name must be 1 to {_MAX_NAME_LENGTH} characters long"
            )
        if "<locals>" in task.func.__qualname__:
            raise InvalidTask("Task function must be defined at a module level.")

    def enqueue(
        self, task: DjangoTask, args: list[Any], kwargs: dict[str, Any]
    ) -> TaskResult:
        """Defer a job of ``task`` (on Django's connection: in the caller's
        transaction, if any).

        Raises:
            InvalidTask: the task is invalid for this backend.
            InvalidJobArguments: the arguments are not JSON-serialisable.
        """
        self.validate_task(task)
        run_after = task.run_after
        if run_after is not None and timezone.is_naive(run_after):
            run_after = timezone.make_aware(run_after)  # USE_TZ = False
        app = _app()
        job_task = register(app, task)
        job_id = job_task.configure(
            queue=task.queue_name, priority=task.priority, schedule_at=run_after
        ).defer(args=normalize_json(list(args)), kwargs=normalize_json(kwargs))
        job = app.job_manager.get_job(job_id)
        assert job is not None  # just written, in this transaction
        return _result(task, job, self.alias)

    def get_result(self, result_id: str) -> TaskResult:
        """The result of the job ``result_id``.

        Raises:
            TaskResultDoesNotExist: no such job, or not a job of a Django task.
        """
        try:
            job_id = int(result_id)
        except (TypeError, ValueError):
            raise TaskResultDoesNotExist(f"Not a job id: {result_id!r}") from None
        job = _app().job_manager.get_job(job_id)
        task = None if job is None else _django_task(job.task_name)
        if job is None or task is None:
            raise TaskResultDoesNotExist(f"No job of a Django task with id {job_id}")
        return _result(task, job, self.alias)


def _django_task(path: str) -> DjangoTask | None:
    """The Django task at ``path`` if it uses this backend, else None."""
    try:
        task = import_string(path)
    except ImportError:
        return None
    if not isinstance(task, DjangoTask):
        return None
    backends = getattr(settings, "TASKS", {})
    backend = backends.get(task.backend, {}).get("BACKEND", "")
    if import_string(backend) is not TaskBackend:
        return None
    return task


def resolve(app: App, name: str) -> Task[Any, Any] | None:
    """The job task of the Django task named ``name``, registered on first
    use; None when ``name`` is not a Django task of this backend. Used by
    workers for jobs deferred elsewhere."""
    task = _django_task(name)
    return None if task is None else register(app, task)


def register(app: App, task: DjangoTask) -> Task[Any, Any]:
    """The job task that runs ``task``, registered once per path."""
    path = task.module_path
    with _registering:
        existing = app.tasks.get(path)
        if existing is not None:
            return existing
        return app.task(name=path, pass_context=True)(_runner(task))


def _runner(task: DjangoTask) -> Any:
    """The function of the job task of ``task``: calls it with the job's
    ``args`` and ``kwargs`` (and Django's TaskContext first, if asked)."""
    path = task.module_path

    def arguments(context: JobContext, args: list[Any]) -> tuple[DjangoTask, list[Any]]:
        current = _django_task(path) or task
        if current.takes_context:
            running = _result(current, context.job, current.backend, running=True)
            return current, [TaskContext(task_result=running), *args]
        return current, list(args)

    if inspect.iscoroutinefunction(task.func):

        async def run_async(
            context: JobContext, args: list[Any], kwargs: dict[str, Any]
        ) -> Any:
            current, call_args = arguments(context, args)
            return normalize_json(await current.func(*call_args, **kwargs))

        run_async.__qualname__ = run_async.__name__ = path
        return run_async

    def run(context: JobContext, args: list[Any], kwargs: dict[str, Any]) -> Any:
        current, call_args = arguments(context, args)
        return normalize_json(current.func(*call_args, **kwargs))

    run.__qualname__ = run.__name__ = path
    return run


def _result(
    task: DjangoTask, job: Job, alias: str, *, running: bool = False
) -> TaskResult:
    status = TaskResultStatus.RUNNING if running else _STATUSES[job.status]
    errors = []
    if job.error is not None and status is TaskResultStatus.FAILED:
        path = job.error.type if "." in job.error.type else f"builtins.{job.error.type}"
        errors.append(
            TaskError(
                exception_class_path=path,
                traceback=job.error.traceback or job.error.message,
            )
        )
    started = job.started_at or (timezone.now() if running else None)
    result = TaskResult(
        task=task,
        id=str(job.id),
        status=status,
        enqueued_at=job.created_at,
        started_at=started,
        finished_at=None if running else job.finished_at,
        last_attempted_at=started,
        args=job.task_kwargs.get("args", []),
        kwargs=job.task_kwargs.get("kwargs", {}),
        backend=alias,
        errors=errors,
        # One entry per attempt (Django counts attempts so, the running one
        # included; job.attempts counts the ended ones); only the last worker
        # of a job is known.
        worker_ids=[str(job.worker_id)]
        * (job.attempts + (1 if job.status is Status.DOING else 0)),
    )
    if status is TaskResultStatus.SUCCESSFUL:
        # TaskResult keeps its return value in a field set after construction.
        object.__setattr__(result, "_return_value", job.result)
    return result
