"""The application object: a blueprint of tasks bound to a connector."""

from __future__ import annotations

import functools
import importlib
import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.to_thread
from typing_extensions import Self

from ._blueprint import Blueprint
from ._builtin_tasks import make_builtin_blueprint
from ._deferrer import _UNSET, JobDeferrer, JobTemplate
from ._exceptions import LoadFromPathError, TaskNotFound
from ._hooks import Hooks
from ._job_manager import JobManager, SyncConnectorSlot
from ._limits import Limit, QueueLimits
from ._schema import SchemaManager
from ._task import DEFAULT_QUEUE
from ._validation import check_name
from .connectors._sync_only import SyncOnlyConnector, is_sync_only
from .worker._worker import Worker

if TYPE_CHECKING:
    import datetime
    from collections.abc import Generator, Iterable, Iterator, Mapping

    from anyio.abc import TaskStatus

    from .connectors._protocols import AsyncConnector, SyncConnector

logger = logging.getLogger("procrastinate_anyio.app")


class App(Blueprint):
    """Tasks, bound to a database through a connector.

    Args:
        connector: where jobs live: :class:`PsycopgConnector` (PostgreSQL)
            or :class:`InMemoryConnector` (tests).
        import_paths: modules to import before a worker starts, so that the
            tasks they declare are registered.
        worker_defaults: default keyword options of :meth:`run_worker`.
        periodic_defaults: options of the periodic deferrer.
        queue_limits: per queue, at most N jobs running at once and at most N
            started per period, across every worker:
            ``{"emails": QueueLimits(concurrency_limit=5, rate_limit="10/s")}``
            (or the same keys in a mapping).
    """

    def __init__(
        self,
        *,
        connector: AsyncConnector | SyncConnector,
        import_paths: Iterable[str] | None = None,
        worker_defaults: Mapping[str, Any] | None = None,
        periodic_defaults: Mapping[str, Any] | None = None,
        queue_limits: Mapping[str, QueueLimits | Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        self._hooks = Hooks()
        self.import_paths = list(import_paths or [])
        self.worker_defaults: dict[str, Any] = dict(worker_defaults or {})
        self.periodic_defaults: dict[str, Any] = dict(periodic_defaults or {})
        self.queue_limits: dict[str, QueueLimits] = {
            check_name("queue", queue): limits
            if isinstance(limits, QueueLimits)
            else QueueLimits(**limits)
            for queue, limits in (queue_limits or {}).items()
        }
        self._bind(connector)
        self.add_tasks_from(make_builtin_blueprint(), namespace="builtin")

    def __repr__(self) -> str:
        return f"App(connector={self.connector!r}, tasks={len(self.tasks)})"

    def _bind(self, connector: AsyncConnector | SyncConnector) -> None:
        if is_sync_only(connector):
            # Procrastinate's sync-only app: the sync API, no worker.
            connector = SyncOnlyConnector(cast("SyncConnector", connector))
        self.connector: AsyncConnector = cast("AsyncConnector", connector)
        self._sync_slot = SyncConnectorSlot(self.connector)
        self._sync_opened: list[bool] = []
        self._job_manager = JobManager(self.connector, self._sync_slot, self._hooks)
        self.schema_manager = SchemaManager(self.connector, self._sync_slot)

    def limits(self) -> tuple[Limit, ...]:
        """The global limits the worker's claims enforce: the tasks'
        ``concurrency_limit``/``rate_limit`` and the ``queue_limits``."""
        found = [
            Limit(
                scope="task",
                names=(task.name, *task.aliases),
                concurrency=task.concurrency_limit,
                rate=task.rate_limit,
            )
            for task in self.tasks.values()
            if task.concurrency_limit is not None or task.rate_limit is not None
        ]
        found += [
            Limit(
                scope="queue",
                names=(queue,),
                concurrency=limits.concurrency_limit,
                rate=limits.rate_limit,
            )
            for queue, limits in sorted(self.queue_limits.items())
        ]
        return tuple(found)

    @property
    def job_manager(self) -> JobManager:
        return self._job_manager

    @contextmanager
    def replace_connector(self, connector: AsyncConnector) -> Iterator[App]:
        """Use another connector for the block, typically an
        :class:`InMemoryConnector` in tests: every task of the app (and of
        its blueprints) defers through it meanwhile.

        Example::

            with app.replace_connector(pa.InMemoryConnector()):
                await my_view(...)
        """
        saved = (
            self.connector,
            self._sync_slot,
            self._job_manager,
            self.schema_manager,
            self._sync_opened,
        )
        self._bind(connector)
        try:
            yield self
        finally:
            (
                self.connector,
                self._sync_slot,
                self._job_manager,
                self.schema_manager,
                self._sync_opened,
            ) = saved

    def with_connector(self, connector: AsyncConnector) -> App:
        """A copy of this app, with the same tasks, on another connector: to
        run a worker or the CLI against another database. The tasks still
        defer through the app they were declared on; to make them defer
        elsewhere in tests, use :meth:`replace_connector`."""
        app = App(
            connector=connector,
            import_paths=self.import_paths,
            worker_defaults=self.worker_defaults,
            periodic_defaults=self.periodic_defaults,
            queue_limits=self.queue_limits,
        )
        app._hooks.defer[:] = self._hooks.defer  # instrumented like this one
        app._hooks.run[:] = self._hooks.run
        app._hooks.worker_services[:] = self._hooks.worker_services
        # The copy adopted its own builtin tasks; take every other task.
        builtins = {
            name: task
            for name, task in app.tasks.items()
            if name.startswith("builtin:")
        }
        app.tasks = {**self.tasks, **builtins}
        app._aliases = dict(self._aliases)
        app.periodic_tasks = list(self.periodic_tasks)
        return app

    def open_async(self) -> AsyncOpening:
        """Open the connector: ``await app.open_async()`` (then
        :meth:`close_async`), or ``async with app.open_async():`` for a
        block. A connector that is already open is left to whoever opened it.

        Cancellation: closing at the end of the block is shielded, so the
        connections are released even when the block is cancelled.
        """
        return AsyncOpening(self)

    async def close_async(self) -> None:
        """Close the connector (and the sync connections the sync API opened
        meanwhile, see :meth:`open`).

        Cancellation: shielded, so the connections are released.
        """
        with anyio.CancelScope(shield=True):
            await self.connector.close_async()
            await self._close_implicit_sync()

    async def _close_implicit_sync(self) -> None:
        # In a thread (closing a pool blocks), and only when there is one:
        # a thread hop is a wait that a test's mock clock would jump over.
        if self._sync_slot.has_implicit:
            await anyio.to_thread.run_sync(self._sync_slot.close_implicit)

    def open(self) -> Self:
        """Open a sync connection for the sync API (``task.defer()``,
        ``job_manager.list_jobs()``...) in code with no event loop:
        ``app.open()`` (then :meth:`close`), or ``with app.open():`` for a
        block. Once the async connector is open (in a worker, or after
        :meth:`open_async`), the sync API works without it."""
        if self._sync_slot.connector is not None:
            self._sync_opened.append(False)  # nested: the outer one closes
            return self
        connector = self.connector.get_sync_connector()
        connector.open()
        self._sync_slot.connector = connector
        self._sync_opened.append(True)
        return self

    def close(self) -> None:
        """Close the sync connection that :meth:`open` opened."""
        self._sync_opened.clear()
        connector, self._sync_slot.connector = self._sync_slot.connector, None
        if connector is not None:
            connector.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        # The block of `with app.open():` closes what that open() opened.
        if not self._sync_opened or self._sync_opened.pop():
            self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close_async()

    def configure_task(
        self,
        name: str,
        *,
        allow_unknown: bool = True,
        lock: str | None = _UNSET,
        queueing_lock: str | None = _UNSET,
        task_kwargs: Mapping[str, Any] | None = None,
        schedule_at: datetime.datetime | None = None,
        schedule_in: Mapping[str, float] | datetime.timedelta | None = None,
        priority: int | None = None,
        queue: str | None = None,
        connection: Any = None,
    ) -> JobDeferrer:
        """Defer a job by task name, e.g. a task that lives in another code base.

        A known task keeps its own options unless given here (None for
        ``priority`` or ``queue`` means the task's; ``lock=None`` clears its
        lock); an unknown one (with ``allow_unknown``) goes to ``queue`` or
        ``"default"``, and its arguments are not checked against a signature.

        Raises:
            TaskNotFound: the task is unknown and ``allow_unknown`` is False.
        """
        try:
            task = self.get_task(name)
        except TaskNotFound:
            if not allow_unknown:
                raise
        else:
            return task.configure(
                lock=lock,
                queueing_lock=queueing_lock,
                task_kwargs=task_kwargs,
                schedule_at=schedule_at,
                schedule_in=schedule_in,
                priority=_UNSET if priority is None else priority,
                queue=_UNSET if queue is None else queue,
                connection=connection,
            )
        template = JobTemplate(
            task_name=name,
            queue=DEFAULT_QUEUE if queue is None else queue,
            priority=0 if priority is None else priority,
            lock=None if lock is _UNSET else lock,
            queueing_lock=None if queueing_lock is _UNSET else queueing_lock,
            schedule_at=schedule_at,
            schedule_in=schedule_in,
            task_kwargs=dict(task_kwargs or {}),
        )
        return JobDeferrer(self.job_manager, template, connection=connection)

    def run_worker(self, **options: Any) -> Any:
        """Run a worker, in the style of the caller.

        In async code (asyncio or Trio), this is :meth:`run_worker_async`:
        ``await app.run_worker()``, ``anyio.run(app.run_worker)`` and
        ``await tg.start(app.run_worker)`` work. Called with no running event
        loop (a script, a sync task's thread), it runs the worker on asyncio
        to the end, blocking, like Procrastinate's; use
        :meth:`run_worker_sync` to choose the backend.

        Args:
            **options: :class:`WorkerOptions` fields, over ``worker_defaults``
                (and ``task_status`` in async code).

        Returns:
            In async code, the coroutine to await; else None, once the
            worker stopped.
        """
        try:
            anyio.get_current_task()
        except RuntimeError:  # anyio's NoEventLoopError: no loop in this thread
            self.run_worker_sync(**options)
            return None
        return self.run_worker_async(**options)

    async def run_worker_async(
        self,
        *,
        task_status: TaskStatus[Worker] = anyio.TASK_STATUS_IGNORED,
        **options: Any,
    ) -> None:
        """Run a worker until it is stopped (SIGINT/SIGTERM, ``worker.stop()``,
        cancellation of the caller's scope or task, or ``wait=False`` with no
        job left).

        Opens the connector if it is not open (and closes what it opened).
        In a task group, ``worker = await tg.start(partial(app.run_worker_async,
        ...))`` returns the :class:`Worker` once it is registered and listening.

        Args:
            **options: :class:`WorkerOptions` fields, over ``worker_defaults``.
        """
        worker = Worker(self, **{**self.worker_defaults, **options})
        self.perform_import_paths()
        opened = not self.connector.is_open
        if opened:
            await self.connector.open_async()
        try:
            await worker.run(task_status=task_status)
        finally:
            if opened:
                await self.close_async()
            else:  # what the jobs' sync API opened ends with the worker
                with anyio.CancelScope(shield=True):
                    await self._close_implicit_sync()

    def run_worker_sync(self, *, backend: str = "asyncio", **options: Any) -> None:
        """Run a worker from sync code: ``anyio.run`` on ``backend``
        ("asyncio" or "trio") of :meth:`run_worker_async`."""
        if backend not in ("asyncio", "trio"):
            raise ValueError(f"backend must be 'asyncio' or 'trio', not {backend!r}")
        anyio.run(functools.partial(self.run_worker_async, **options), backend=backend)

    def perform_import_paths(self) -> None:
        """Import the modules of ``import_paths``.

        Raises:
            LoadFromPathError: a module does not import.
        """
        for path in self.import_paths:
            try:
                importlib.import_module(path)
            except ImportError as exc:
                raise LoadFromPathError(f"Could not import {path!r}: {exc}") from exc
            logger.debug(
                "Imported %s", path, extra={"action": "import_path", "path": path}
            )


class AsyncOpening:
    """What :meth:`App.open_async` returns: awaitable (opens, returns the
    app) and an async context manager (opens, closes at the end)."""

    def __init__(self, app: App) -> None:
        self._app = app
        self._opened: bool | None = None  # None: not opened by this one yet

    async def _open(self) -> App:
        if self._opened is None:
            self._opened = not self._app.connector.is_open
            if self._opened:
                await self._app.connector.open_async()
        return self._app

    def __await__(self) -> Generator[Any, None, App]:
        return self._open().__await__()

    async def __aenter__(self) -> App:
        return await self._open()

    async def __aexit__(self, *exc_info: object) -> None:
        if self._opened:
            await self._app.close_async()


def load_app(path: str) -> App:
    """The :class:`App` at ``module.attribute`` (``module:attribute`` works too).

    Raises:
        LoadFromPathError: the module does not import or has no such App.
    """
    module_name, sep, attribute = path.replace(":", ".").rpartition(".")
    if not sep or not module_name or not attribute:
        raise LoadFromPathError(
            f"{path!r} is not a dotted path to an App, like 'myproject.tasks.app'"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise LoadFromPathError(f"Could not import {module_name!r}: {exc}") from exc
    try:
        app = getattr(module, attribute)
    except AttributeError:
        raise LoadFromPathError(
            f"Module {module_name!r} has no attribute {attribute!r}"
        ) from None
    if not isinstance(app, App):
        raise LoadFromPathError(f"{path!r} is a {type(app).__name__}, not an App")
    return app
