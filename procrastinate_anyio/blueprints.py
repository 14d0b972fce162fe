"""Blueprints, under Procrastinate's module path (``procrastinate.blueprints``)."""

from __future__ import annotations

from ._blueprint import Blueprint as Blueprint

__all__ = ["Blueprint"]
