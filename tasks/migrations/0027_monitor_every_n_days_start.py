"""The "every N days" monitors saved without a start date counted their days from 2000-01-01; they are given
the start date that keeps that very schedule (the latest cadence day on or before today, or before the slot
still due of an overdue monitor, in their zone), as new ones are given the day of their first run. No run
moves, none is added or skipped, and a catch-up after a downtime still counts the slots missed."""

from datetime import date, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import migrations
from django.utils import timezone

EPOCH = date(2000, 1, 1)  # what cadence.py counted from; frozen here as it was


def start_dates(apps, schema_editor):
    Monitor = apps.get_model("tasks", "Monitor")
    now = timezone.now()
    for monitor in Monitor.objects.filter(cadence="every_n_days", start_date__isnull=True):
        try:
            zone = ZoneInfo(monitor.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")  # it cannot run; any day keeps that so
        day = now.astimezone(zone).date()
        if monitor.next_run_at is not None:  # overdue (no scheduler ticking): its catch-up keeps its slots
            day = min(day, monitor.next_run_at.astimezone(zone).date())
        n = monitor.interval_days or 1
        monitor.start_date = day - timedelta(days=(day - EPOCH).days % n)
        monitor.save(update_fields=["start_date"])


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0026_batch_plan_fingerprint"),
    ]

    operations = [
        migrations.RunPython(start_dates, migrations.RunPython.noop),
    ]
