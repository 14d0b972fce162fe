"""The ``procrastinate-anyio`` command line (also ``python -m procrastinate_anyio``)."""

from __future__ import annotations

from ._main import main as main

__all__ = ["main"]
