"""An app's connector when it was given a sync one.

Procrastinate lets ``App(connector=SyncPsycopgConnector(...))`` defer jobs
from sync code (a WSGI view, a script) without an async connector. Such an
app opens with ``app.open()`` and serves the sync API; this stand-in fills the
async side, so that anything needing it (a worker, ``open_async``, the
``*_async`` methods) fails at once with a clear error instead of an
AttributeError deep inside.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from .._exceptions import AppNotOpen

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._protocols import SyncConnector

_MESSAGE = (
    "This app's connector is a sync one ({connector!r}): it serves the sync API "
    "(`with app.open(): task.defer()`); the async API and workers need an async "
    "connector such as PsycopgConnector"
)


_OPERATION_PREFIXES = (
    "job_",
    "worker_",
    "schema_",
    "periodic_",
    "maintenance_",
    "listen",
    "connect",
)


class SyncOnlyConnector:
    """The async side of an app built on a sync connector (see the module
    docstring). Never open; every async operation raises AppNotOpen."""

    json_dumps = None  # the sync connector encodes as usual

    def __init__(self, sync: SyncConnector) -> None:
        self.sync = sync

    def __repr__(self) -> str:
        return f"SyncOnlyConnector({self.sync!r})"

    @property
    def is_open(self) -> bool:
        return False

    def get_sync_connector(self) -> SyncConnector:
        return self.sync

    def _refuse(self) -> NoReturn:
        raise AppNotOpen(_MESSAGE.format(connector=self.sync))

    async def open_async(self) -> None:
        self._refuse()

    async def close_async(self) -> None:
        """Nothing to close on the async side."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        # Only the protocol's operations: other lookups (getattr probes,
        # copy, pickle) get the usual AttributeError.
        if not name.startswith(_OPERATION_PREFIXES):
            raise AttributeError(name)

        async def refuse(*args: Any, **kwargs: Any) -> NoReturn:
            self._refuse()

        return refuse


def is_sync_only(connector: object) -> bool:
    """A sync connector given where an async one is expected."""
    return not hasattr(connector, "open_async") and hasattr(connector, "open")
