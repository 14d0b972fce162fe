"""The builtin tasks, under Procrastinate's module path (``procrastinate.builtin_tasks``).

Each app has its own copy under the ``builtin:`` namespace
(``app.get_task("builtin:remove_old_jobs")``); this module's
``remove_old_jobs`` is that of a blueprint made for the purpose, to read its
signature or call it directly."""

from __future__ import annotations

from ._builtin_tasks import make_builtin_blueprint as _make_builtin_blueprint

remove_old_jobs = _make_builtin_blueprint().tasks["remove_old_jobs"]
"""The builtin task that deletes old finished jobs."""

__all__ = ["remove_old_jobs"]
