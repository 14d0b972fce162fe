"""SQL migration 0.1.0_05_pre_limit_starts.sql: the starts of rate-limited
jobs, and the claim under limits."""

from __future__ import annotations

from django.db import migrations

from procrastinate_anyio.contrib.django._migration import ApplySQLMigration


class Migration(migrations.Migration):
    dependencies = [("procrastinate_anyio", "0004_queue_pauses")]

    operations = [ApplySQLMigration("0.1.0_05_pre_limit_starts.sql")]
