"""SQL migration 0.1.0_06_pre_job_headers.sql, and the column it adds to the
read-only ``Job`` model."""

from __future__ import annotations

from django.db import migrations, models

from procrastinate_anyio.contrib.django._migration import ApplySQLMigration


class Migration(migrations.Migration):
    dependencies = [("procrastinate_anyio", "0005_limit_starts")]

    operations = [
        ApplySQLMigration("0.1.0_06_pre_job_headers.sql"),
        migrations.AddField(
            model_name="job",
            name="headers",
            field=models.JSONField(null=True),
        ),
    ]
