"""The admin: jobs (list, filters, search, a detail page, actions) and
workers, read-only; actions go through ``app.job_manager``, on Django's
connection."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html

from procrastinate_anyio import AlreadyEnqueued, JobNotFound, Status

from . import models

if TYPE_CHECKING:
    from django.db.models import QuerySet
    from django.http import HttpRequest, HttpResponse


def _pretty(value: Any) -> str:
    return str(
        format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))
    )


class _ReadOnlyAdmin(admin.ModelAdmin):
    """Pages show rows; nothing is added, edited or deleted here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The change permission lets a user run the actions on the list; a
        # row itself is never edited.
        return obj is None and super().has_change_permission(request)


@admin.register(models.Job)
class JobAdmin(_ReadOnlyAdmin):
    list_display = [
        "id",
        "task_name",
        "queue_name",
        "status",
        "priority",
        "attempts",
        "scheduled_at",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "queue_name", "task_name"]
    search_fields = ["task_name", "lock", "queueing_lock", "args__icontains"]
    # args is JSON: "args__icontains" searches its text.
    date_hierarchy = "created_at"
    actions = ["retry", "cancel", "abort", "run_now"]
    fieldsets = [
        (None, {"fields": ["id", "task_name", "queue_name", "status", "priority"]}),
        ("Arguments and outcome", {"fields": ["pretty_args", "pretty_result"]}),
        (
            "Error",
            {"fields": ["error_type", "error_message", "pretty_traceback"]},
        ),
        (
            "Timeline",
            {
                "fields": [
                    "created_at",
                    "scheduled_at",
                    "started_at",
                    "finished_at",
                    "attempts",
                    "worker_id",
                ]
            },
        ),
        (
            "Locks",
            {"fields": ["lock", "queueing_lock", "lock_waiting", "abort_requested"]},
        ),
    ]
    readonly_fields = [
        "pretty_args",
        "pretty_result",
        "pretty_traceback",
    ]

    @admin.display(description="arguments")
    def pretty_args(self, job: models.Job) -> str:
        return _pretty(job.args)

    @admin.display(description="result")
    def pretty_result(self, job: models.Job) -> str:
        return _pretty(job.result)

    @admin.display(description="traceback")
    def pretty_traceback(self, job: models.Job) -> str:
        return str(format_html("<pre>{}</pre>", job.error_traceback or ""))

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The list, with job counts per queue and status above it."""
        from . import app

        statuses = [status.value for status in Status]
        summary = [
            (stats.name, [getattr(stats, status) for status in statuses])
            for stats in app.job_manager.list_queues()
        ]
        context = {
            **(extra_context or {}),
            "queue_summary": summary,
            "queue_statuses": statuses,
        }
        return super().changelist_view(request, extra_context=context)

    def _each(
        self,
        request: HttpRequest,
        queryset: QuerySet[models.Job],
        verb: str,
        act: Any,
    ) -> None:
        done: list[int] = []
        skipped: list[int] = []
        for job_id in queryset.values_list("id", flat=True):
            try:
                ok = act(job_id)
            except (JobNotFound, AlreadyEnqueued) as exc:
                ok = False
                messages.warning(request, f"Job {job_id}: {exc}")
            (done if ok else skipped).append(job_id)
        if done:
            messages.success(request, f"{verb} {len(done)} job(s).")
        if skipped:
            messages.warning(
                request,
                f"{len(skipped)} job(s) could not be {verb.lower()}: "
                f"{', '.join(map(str, skipped))}",
            )

    @admin.action(
        description="Retry (failed, aborted or cancelled jobs)", permissions=["change"]
    )
    def retry(self, request: HttpRequest, queryset: QuerySet[models.Job]) -> None:
        from . import app

        def act(job_id: int) -> bool:
            app.job_manager.retry_job_by_id(job_id)
            return True

        self._each(request, queryset, "Retried", act)

    @admin.action(description="Cancel (jobs not started yet)", permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[models.Job]) -> None:
        from . import app

        self._each(request, queryset, "Cancelled", app.job_manager.cancel_job_by_id)

    @admin.action(
        description="Abort (running jobs; cancels waiting ones)", permissions=["change"]
    )
    def abort(self, request: HttpRequest, queryset: QuerySet[models.Job]) -> None:
        from . import app

        def act(job_id: int) -> bool:
            return app.job_manager.cancel_job_by_id(job_id, abort=True)

        self._each(request, queryset, "Aborted", act)

    @admin.action(
        description="Run now (waiting jobs scheduled for later)", permissions=["change"]
    )
    def run_now(self, request: HttpRequest, queryset: QuerySet[models.Job]) -> None:
        # No job_manager operation moves a schedule: the row's scheduled_at
        # is set to now, for todo jobs only. Workers see it at their next
        # poll (fetch_job_polling_interval).
        now = timezone.now()
        due = queryset.filter(status=Status.TODO.value, scheduled_at__gt=now)
        count = due.update(scheduled_at=now)
        messages.success(request, f"Scheduled {count} job(s) to run now.")
        if count < queryset.count():
            messages.warning(
                request,
                f"{queryset.count() - count} job(s) were not waiting for a later time.",
            )


@admin.register(models.Worker)
class WorkerAdmin(_ReadOnlyAdmin):
    list_display = ["id", "name", "queues", "started_at", "last_heartbeat"]
    search_fields = ["name"]


@admin.register(models.SchemaMigration)
class SchemaMigrationAdmin(_ReadOnlyAdmin):
    list_display = ["name", "applied_at"]
