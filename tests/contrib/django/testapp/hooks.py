"""The ``PROCRASTINATE_ANYIO_ON_APP_READY`` hook of the tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from procrastinate_anyio import App

READY: list[App] = []


def on_app_ready(app: App) -> None:
    READY.append(app)
