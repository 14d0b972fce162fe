"""SQL migration 0.1.0_01_pre_initial.sql, and the state of the read-only
models over the tables it creates."""

from __future__ import annotations

from django.db import migrations, models

from procrastinate_anyio.contrib.django._migration import ApplySQLMigration
from procrastinate_anyio.contrib.django.models import TextArrayField

STATUS_CHOICES = [
    (status, status)
    for status in ("todo", "doing", "succeeded", "failed", "cancelled", "aborted")
]


class Migration(migrations.Migration):
    initial = True

    dependencies: list[tuple[str, str]] = []

    operations = [
        ApplySQLMigration("0.1.0_01_pre_initial.sql"),
        migrations.CreateModel(
            name="Job",
            fields=[
                ("id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("queue_name", models.TextField()),
                ("task_name", models.TextField()),
                ("priority", models.IntegerField()),
                ("lock", models.TextField(null=True)),
                ("queueing_lock", models.TextField(null=True)),
                ("args", models.JSONField()),
                ("status", models.CharField(choices=STATUS_CHOICES, max_length=32)),
                ("lock_waiting", models.BooleanField()),
                ("scheduled_at", models.DateTimeField(null=True)),
                ("attempts", models.IntegerField()),
                ("abort_requested", models.BooleanField()),
                ("worker_id", models.BigIntegerField(null=True)),
                ("created_at", models.DateTimeField()),
                ("started_at", models.DateTimeField(null=True)),
                ("finished_at", models.DateTimeField(null=True)),
                ("result", models.JSONField(null=True)),
                ("error_type", models.TextField(null=True)),
                ("error_message", models.TextField(null=True)),
                ("error_traceback", models.TextField(null=True)),
            ],
            options={"db_table": "pa_jobs", "ordering": ["-id"], "managed": False},
        ),
        migrations.CreateModel(
            name="SchemaMigration",
            fields=[
                ("name", models.TextField(primary_key=True, serialize=False)),
                ("applied_at", models.DateTimeField()),
            ],
            options={
                "db_table": "pa_schema_migrations",
                "ordering": ["name"],
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="Worker",
            fields=[
                ("id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("name", models.TextField()),
                ("queues", TextArrayField(null=True)),
                ("started_at", models.DateTimeField()),
                ("last_heartbeat", models.DateTimeField()),
            ],
            options={"db_table": "pa_workers", "ordering": ["id"], "managed": False},
        ),
    ]
