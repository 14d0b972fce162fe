"""SQL migration 0.1.0_02_pre_crash_recoveries.sql, and the column it adds
to the read-only ``Job`` model."""

from __future__ import annotations

from django.db import migrations, models

from procrastinate_anyio.contrib.django._migration import ApplySQLMigration


class Migration(migrations.Migration):
    dependencies = [("procrastinate_anyio", "0001_initial")]

    operations = [
        ApplySQLMigration("0.1.0_02_pre_crash_recoveries.sql"),
        migrations.AddField(
            model_name="job",
            name="recoveries",
            field=models.IntegerField(default=0),
            preserve_default=False,
        ),
    ]
