"""SQL migration 0.1.0_04_pre_queue_pauses.sql: paused queues."""

from __future__ import annotations

from django.db import migrations

from procrastinate_anyio.contrib.django._migration import ApplySQLMigration


class Migration(migrations.Migration):
    dependencies = [("procrastinate_anyio", "0002_crash_recoveries")]

    operations = [ApplySQLMigration("0.1.0_04_pre_queue_pauses.sql")]
