"""Tasks every app has, under the ``builtin:`` namespace."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._blueprint import Blueprint

if TYPE_CHECKING:
    from ._context import JobContext


def make_builtin_blueprint() -> Blueprint:
    """A fresh blueprint of the builtin tasks (each app adopts its own copy,
    since adopting renames the tasks)."""
    blueprint = Blueprint()

    # The alias is the task's name in Procrastinate, so that its jobs and
    # `app.get_task("builtin:procrastinate.builtin_tasks.remove_old_jobs")` work.
    @blueprint.task(
        name="remove_old_jobs",
        aliases=["procrastinate.builtin_tasks.remove_old_jobs"],
        pass_context=True,
    )
    async def remove_old_jobs(
        context: JobContext,
        *,
        max_hours: float,
        queue: str | None = None,
        remove_failed: bool = False,
        remove_cancelled: bool = False,
        remove_aborted: bool = False,
        timestamp: int | None = None,
    ) -> int:
        """Delete jobs that finished more than ``max_hours`` ago: succeeded
        ones, and failed, cancelled or aborted ones when asked. Returns how
        many were deleted. Defer it periodically to keep the table small::

            app.periodic(cron="0 4 * * *", task_kwargs={"max_hours": 72})(
                app.get_task("builtin:remove_old_jobs")
            )

        ``timestamp`` is the tick when it runs as a periodic task (unused).
        """
        return await context.app.job_manager.delete_old_jobs_async(
            max_hours=max_hours,
            queue=queue,
            include_failed=remove_failed,
            include_cancelled=remove_cancelled,
            include_aborted=remove_aborted,
        )

    return blueprint
