"""Connectors on Django's database settings.

:class:`DjangoSyncConnector` runs the sync API (``task.defer()``, the admin's
actions, ``Task.enqueue``) on **Django's own connection** of the current
thread, inside ``transaction.atomic``: in a view's transaction, a job exists
if and only if the transaction commits, and workers wake at commit.

:class:`DjangoConnector` is the async connector of the Django app: the worker
and the async API use its own pool of AnyIO connections (Django's connections
are sync), built from the same settings when it opens. While it is not open
(an async view on asyncio), the async API falls back to the sync connector in
Django's thread (``sync_to_async``), so a defer joins the request's
connection there too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

import psycopg
from django.db import connections, transaction
from psycopg.types.json import JsonbLoader, JsonLoader

from procrastinate_anyio import PsycopgConnector, SyncPsycopgConnector

from . import _core

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from contextlib import AbstractContextManager

    from procrastinate_anyio import GroupStats, Job
    from procrastinate_anyio.connectors import PausedQueue

T = TypeVar("T")

# Options of Django's PostgreSQL backend that are not libpq parameters.
_DJANGO_ONLY_OPTIONS: Final = frozenset(
    {
        "assume_role",
        "context",
        "cursor_factory",
        "isolation_level",
        "pool",
        "prepare_threshold",
        "server_side_binding",
    }
)


def connector_params(alias: str = "default") -> dict[str, Any]:
    """Keyword arguments of :class:`~procrastinate_anyio.PsycopgConnector` (or
    :class:`~procrastinate_anyio.SyncPsycopgConnector`) for the database
    ``alias`` of Django's ``DATABASES``, for an App of one's own::

        app = App(connector=PsycopgConnector(**connector_params("default")))

    Raises:
        ImproperlyConfigured: ``alias`` is unknown or not PostgreSQL.
    """
    from ._settings import check_database

    check_database(alias)
    params = connections[alias].get_connection_params()
    libpq = {
        key: value
        for key, value in params.items()
        if key not in _DJANGO_ONLY_OPTIONS and value is not None
    }
    return {"conninfo": psycopg.conninfo.make_conninfo("", **libpq)}


class _PlainJsonConnection:
    """Django's psycopg connection, seen through cursors that load JSON.

    Django registers a loader that leaves ``jsonb`` as text (its JSONField
    decodes it); the library's operations expect decoded values, so their
    cursors get psycopg's loaders back. Only what the operation runners use
    is exposed.
    """

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection
        self.info = connection.info

    @property
    def autocommit(self) -> bool:
        return self._connection.autocommit

    def transaction(self) -> AbstractContextManager[psycopg.Transaction]:
        return self._connection.transaction()

    def cursor(self, *, row_factory: Any) -> psycopg.Cursor[Any]:
        cursor = psycopg.Cursor(self._connection, row_factory=row_factory)
        cursor.adapters.register_loader("jsonb", JsonbLoader)
        cursor.adapters.register_loader("json", JsonLoader)
        return cursor


class DjangoSyncConnector:
    """The sync connector on Django's connection ``alias`` (of the calling
    thread). Always open: Django opens and closes its connections itself.

    Every operation runs in ``transaction.atomic(using=alias)``: on its own
    it commits at once; inside the caller's ``atomic`` block it is a
    savepoint of the caller's transaction, so an error (a taken queueing
    lock) leaves that transaction usable.
    """

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias

    def __repr__(self) -> str:
        return f"DjangoSyncConnector(alias={self.alias!r})"

    @property
    def is_open(self) -> bool:
        return True

    def open(self) -> None:
        """Nothing to do: Django manages its connections."""

    def close(self) -> None:
        """Nothing to do: Django manages its connections."""

    def _run(self, op: _core.pg_ops.Operation[T]) -> T:
        wrapper = connections[self.alias]
        with transaction.atomic(using=self.alias):
            wrapper.ensure_connection()
            raw: Any = _PlainJsonConnection(wrapper.connection)
            return _core.run_operation_sync(raw, _core.in_callers_transaction(raw, op))

    def job_cancel(self, params: Any, *, connection: Any = None) -> bool:
        """``connection``: a psycopg connection of the caller's, instead of
        Django's (the same transaction rules apply)."""
        if connection is None:
            return self._run(_core.pg_ops.job_cancel(params))
        op = _core.in_callers_transaction(connection, _core.pg_ops.job_cancel(params))
        return _core.run_operation_sync(connection, op)

    def job_defer_many(
        self, jobs: Sequence[Any], *, connection: Any = None
    ) -> list[int]:
        """``connection``: a psycopg connection of the caller's, instead of
        Django's (the same transaction rules apply)."""
        if connection is None:
            return self._run(_core.pg_ops.job_defer_many(jobs))
        op = _core.in_callers_transaction(connection, _core.pg_ops.job_defer_many(jobs))
        return _core.run_operation_sync(connection, op)

    def job_get(self, job_id: int) -> Job | None:
        return self._run(_core.pg_ops.job_get(job_id))

    def job_list(self, filters: Any) -> list[Job]:
        return self._run(_core.pg_ops.job_list(filters))

    def job_retry(self, params: Any) -> bool:
        return self._run(_core.pg_ops.job_retry(params))

    def job_stats(
        self, group_by: Literal["queue", "task", "lock"], filters: Any
    ) -> list[GroupStats]:
        return self._run(_core.pg_ops.job_stats(group_by, filters))

    def job_wait_finished(self, job_id: int, timeout: float | None) -> Job | None:
        """Wait on a connection of its own: LISTEN cannot share Django's."""
        connector = SyncPsycopgConnector(
            **connector_params(self.alias), min_size=0, max_size=1
        )
        connector.open()
        try:
            return connector.job_wait_finished(job_id, timeout)
        finally:
            connector.close()

    def queue_list_paused(self) -> list[PausedQueue]:
        return self._run(_core.pg_ops.queue_list_paused())

    def queue_pause(self, queue: str) -> bool:
        return self._run(_core.pg_ops.queue_pause(queue))

    def queue_resume(self, queue: str) -> bool:
        return self._run(_core.pg_ops.queue_resume(queue))

    def schema_applied_migrations(self) -> list[str] | None:
        return self._run(_core.pg_ops.schema_applied_migrations())

    def schema_apply(
        self, schema_sql: str, migrations: Sequence[tuple[str, str]]
    ) -> list[str]:
        return self._run(_core.pg_ops.schema_apply(schema_sql, migrations))


class DjangoConnector(PsycopgConnector):
    """The async connector of the Django app, on the database ``alias``.

    Its connection parameters are read from Django's settings when it opens
    (so that the test runner's test database is the one used).

    Args:
        alias: the entry of Django's ``DATABASES``.
        max_size: the most connections its pool opens at once.
        connect_kwargs: more connection parameters, passed to psycopg.
    """

    def __init__(
        self,
        alias: str = "default",
        *,
        max_size: int = 10,
        connect_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__("", max_size=max_size, connect_kwargs=connect_kwargs)
        self.alias = alias
        self.sync_connector = DjangoSyncConnector(alias)

    def __repr__(self) -> str:
        return f"DjangoConnector(alias={self.alias!r})"

    async def open_async(self) -> None:
        if not self.is_open:
            self.conninfo = connector_params(self.alias)["conninfo"]
        await super().open_async()

    def get_sync_connector(self) -> DjangoSyncConnector:  # type: ignore[override]  # a SyncConnector too, on Django's connection
        return self.sync_connector

    async def _in_django_thread(self, func: Callable[..., T], *args: Any) -> T:
        # Only asyncio has Django's async machinery (asgiref); elsewhere the
        # connector must be opened, as any PsycopgConnector.
        from asgiref.sync import sync_to_async

        return await sync_to_async(func, thread_sensitive=True)(*args)

    async def job_defer_many(
        self, jobs: Sequence[Any], *, connection: Any = None
    ) -> list[int]:
        if self.is_open or connection is not None:
            return await super().job_defer_many(jobs, connection=connection)
        return await self._in_django_thread(self.sync_connector.job_defer_many, jobs)

    async def job_get(self, job_id: int) -> Job | None:
        if self.is_open:
            return await super().job_get(job_id)
        return await self._in_django_thread(self.sync_connector.job_get, job_id)

    async def job_list(self, filters: Any) -> list[Job]:
        if self.is_open:
            return await super().job_list(filters)
        return await self._in_django_thread(self.sync_connector.job_list, filters)

    async def job_cancel(self, params: Any, *, connection: Any = None) -> bool:
        if self.is_open or connection is not None:
            return await super().job_cancel(params, connection=connection)
        return await self._in_django_thread(self.sync_connector.job_cancel, params)

    async def job_retry(self, params: Any) -> bool:
        if self.is_open:
            return await super().job_retry(params)
        return await self._in_django_thread(self.sync_connector.job_retry, params)
