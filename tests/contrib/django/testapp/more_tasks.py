"""A module of tasks outside ``tasks.py``: imported through
``PROCRASTINATE_ANYIO_IMPORT_PATHS``."""

from __future__ import annotations

from procrastinate_anyio.contrib.django import app


@app.task(name="imported_by_path")
def imported_by_path() -> None:
    """Registered only if the import path was imported."""
