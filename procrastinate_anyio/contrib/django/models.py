"""Read-only models over the library's tables, for the admin and for queries
(``apps.get_model("procrastinate_anyio", "Job")``).

The library owns these tables (the migrations apply its SQL files): the
models are unmanaged, and saving or deleting through them is refused. Change
jobs through ``app.job_manager`` (retry, cancel) instead.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.db import models

from procrastinate_anyio import Status


class ReadOnlyError(Exception):
    """Raised when a model of the library's tables is saved or deleted."""


class _ReadOnlyModel(models.Model):
    class Meta:
        abstract = True
        managed = False

    def save(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise ReadOnlyError(
            f"{type(self).__name__} is read-only: change jobs through "
            "app.job_manager (retry_job_by_id, cancel_job_by_id...)"
        )

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise ReadOnlyError(f"{type(self).__name__} is read-only")


class TextArrayField(models.Field):
    """A read-only ``text[]`` column, read as a list of str (psycopg decodes
    arrays; ``django.contrib.postgres`` need not be installed)."""

    def db_type(self, connection: Any) -> str:
        return "text[]"


STATUS_CHOICES = [(status.value, status.value) for status in Status]


class Job(_ReadOnlyModel):
    """A row of ``pa_jobs``."""

    id = models.BigIntegerField(primary_key=True)
    queue_name = models.TextField()
    task_name = models.TextField()
    priority = models.IntegerField()
    lock = models.TextField(null=True)
    queueing_lock = models.TextField(null=True)
    args = models.JSONField()
    status = models.CharField(max_length=32, choices=STATUS_CHOICES)
    lock_waiting = models.BooleanField()
    scheduled_at = models.DateTimeField(null=True)
    attempts = models.IntegerField()
    abort_requested = models.BooleanField()
    worker_id = models.BigIntegerField(null=True)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)
    result = models.JSONField(null=True)
    error_type = models.TextField(null=True)
    error_message = models.TextField(null=True)
    error_traceback = models.TextField(null=True)
    recoveries = models.IntegerField()
    headers = models.JSONField(null=True)

    class Meta:
        managed = False
        db_table = "pa_jobs"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"#{self.id} {self.task_name} ({self.status})"


class Worker(_ReadOnlyModel):
    """A row of ``pa_workers``: a live worker (dead ones are pruned)."""

    id = models.BigIntegerField(primary_key=True)
    name = models.TextField()
    queues = TextArrayField(null=True)
    started_at = models.DateTimeField()
    last_heartbeat = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "pa_workers"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"#{self.id} {self.name}"


class SchemaMigration(_ReadOnlyModel):
    """A row of ``pa_schema_migrations``: an applied SQL migration file."""

    name = models.TextField(primary_key=True)
    applied_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "pa_schema_migrations"
        ordering = ["name"]

    def __str__(self) -> str:
        return str(self.name)
