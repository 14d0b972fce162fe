"""Periodic tasks, under Procrastinate's module path (``procrastinate.periodic``)."""

from __future__ import annotations

from ._periodic import PeriodicTask as PeriodicTask

__all__ = ["PeriodicTask"]
