"""A sent run older than a week is read again in turns, on `(state, refreshed_at)`, until its tasks are
final (docs/monitors.md). Existing runs take the time of the migration: read within LATE_REFRESH_EVERY."""

import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0027_monitor_every_n_days_start"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="monitorrun",
            name="refreshed_at",
            field=models.DateTimeField(default=django.utils.timezone.now, editable=False),
        ),
        migrations.AddIndex(
            model_name="monitorrun",
            index=models.Index(fields=["state", "refreshed_at"], name="monitor_run_refreshed"),
        ),
    ]
