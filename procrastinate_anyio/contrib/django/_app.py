"""The App of the Django integration: defers on Django's connection, and runs
sync tasks the way Django runs views (old connections closed around each)."""

from __future__ import annotations

import contextlib
import copy
import functools
from typing import TYPE_CHECKING, Any

import anyio
from django import db

from procrastinate_anyio import App, TaskNotFound

from ._settings import Settings, read_settings, settings_error

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from anyio.abc import TaskStatus

    from procrastinate_anyio import Task, Worker

    from ._connector import DjangoConnector


def with_fresh_connections(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func``, closing the calling thread's unusable or expired Django
    connections before and after each call, as Django's request cycle does
    (``CONN_MAX_AGE``, ``CONN_HEALTH_CHECKS``)."""

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        db.close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            db.close_old_connections()

    return run


def with_fresh_connections_async(
    func: Callable[..., Awaitable[Any]],
) -> Callable[..., Awaitable[Any]]:
    """The async twin of :func:`with_fresh_connections`: on asyncio, closes
    the old connections of the thread where Django's async ORM runs its
    queries (``sync_to_async``); elsewhere there is no async ORM."""

    async def close_old() -> None:
        from asgiref.sync import sync_to_async

        # No asyncio event loop (Trio): no async ORM either, nothing to close.
        with contextlib.suppress(RuntimeError):
            await sync_to_async(db.close_old_connections, thread_sensitive=True)()

    @functools.wraps(func)
    async def run(*args: Any, **kwargs: Any) -> Any:
        await close_old()
        try:
            return await func(*args, **kwargs)
        finally:
            with anyio.CancelScope(shield=True):
                await close_old()

    return run


def _django_tasks_framework_task(app: DjangoApp, name: str) -> Task[Any, Any] | None:
    try:
        from ._tasks_backend import resolve
    except ImportError:  # Django < 6: no django.tasks
        return None
    return resolve(app, name)


class DjangoApp(App):
    """An :class:`~procrastinate_anyio.App` on a :class:`DjangoConnector`.

    The sync API needs no ``with app.open()``: it runs on Django's
    connection. In a worker, old connections are closed around each job (for
    async tasks, those of Django's async ORM, which runs on asyncio only).
    """

    connector: DjangoConnector

    def __init__(self, *, connector: DjangoConnector, **options: Any) -> None:
        super().__init__(connector=connector, **options)
        # The sync connector is Django's connection: always open. Entering
        # open() for good fills the app's sync slot with it, through the
        # public API; nested `with app.open():` blocks do nothing.
        self._always_open = self.open()
        self._always_open.__enter__()
        self._for_worker = False
        self._worker_tasks: dict[int, Task[Any, Any]] = {}

    def __repr__(self) -> str:
        return f"DjangoApp(connector={self.connector!r}, tasks={len(self.tasks)})"

    def get_task(self, name: str) -> Task[Any, Any]:
        """The task named ``name``; for a worker, also the tasks of Django's
        tasks framework (``django.tasks``) that use our ``TaskBackend``.

        Raises:
            TaskNotFound: no such task.
        """
        try:
            task = super().get_task(name)
        except TaskNotFound:
            found = _django_tasks_framework_task(self, name)
            if found is None:
                raise
            task = found
        if not self._for_worker:
            return task
        # The worker runs `task.func`: give it a copy of the task whose
        # function closes old connections. Called directly (in a view),
        # tasks stay as they are.
        wrapped = self._worker_tasks.get(id(task))
        if wrapped is None or wrapped.func is not task.func:
            wrapped = copy.copy(task)
            wrapped.func = (
                with_fresh_connections_async(task.func)
                if task.is_async
                else with_fresh_connections(task.func)
            )
            self._worker_tasks[id(task)] = wrapped
        return wrapped

    async def run_worker_async(
        self,
        *,
        task_status: TaskStatus[Worker] = anyio.TASK_STATUS_IGNORED,
        **options: Any,
    ) -> None:
        """:meth:`~procrastinate_anyio.App.run_worker_async` (where every entry point ends),
        running sync tasks with fresh Django connections."""
        worker_app = copy.copy(self)
        worker_app._for_worker = True
        worker_app._worker_tasks = {}
        await App.run_worker_async(worker_app, task_status=task_status, **options)


def configure(app: DjangoApp) -> Settings:
    """Apply the settings to ``app`` (its database alias, import paths and
    defaults) and import ``import_paths``.

    Raises:
        ImproperlyConfigured: a setting is wrong or an import path does not
            import.
    """
    from procrastinate_anyio import LoadFromPathError

    settings = read_settings()
    app.connector.alias = settings.database_alias
    app.connector.sync_connector.alias = settings.database_alias
    app.import_paths = list(settings.import_paths)
    app.worker_defaults = dict(settings.worker_defaults)
    app.periodic_defaults = dict(settings.periodic_defaults)
    try:
        app.perform_import_paths()
    except LoadFromPathError as exc:
        raise settings_error("IMPORT_PATHS", str(exc)) from exc
    return settings
