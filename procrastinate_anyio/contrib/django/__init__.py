"""Django integration: an installed app (label ``procrastinate_anyio``) with
migrations, models and an admin, an :class:`~procrastinate_anyio.App` on
Django's database, the ``manage.py procrastinate_anyio`` command and a
``django.tasks`` backend.

Add ``"procrastinate_anyio.contrib.django"`` to ``INSTALLED_APPS``, then
declare tasks in the ``tasks.py`` of your apps with
``from procrastinate_anyio.contrib.django import app``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._app import DjangoApp as DjangoApp
from ._connector import DjangoConnector as DjangoConnector
from ._connector import DjangoSyncConnector as DjangoSyncConnector
from ._connector import connector_params as connector_params

if TYPE_CHECKING:
    from ._tasks_backend import TaskBackend as TaskBackend

app: DjangoApp = DjangoApp(connector=DjangoConnector())
"""The App of the project, on ``PROCRASTINATE_ANYIO_DATABASE_ALIAS``;
configured from the settings when Django is ready."""

__all__ = [
    "DjangoApp",
    "DjangoConnector",
    "DjangoSyncConnector",
    "TaskBackend",
    "app",
    "connector_params",
]


def __getattr__(name: str) -> Any:
    # django.tasks exists from Django 6.0 on: import it only when asked.
    if name == "TaskBackend":
        from ._tasks_backend import TaskBackend

        return TaskBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
