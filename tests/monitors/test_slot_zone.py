"""A run's time reads as the monitor's cadence does: in its zone, named, on its page (as its upcoming runs),
in its alerts and in its batch's name, whatever the site's zone."""

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from tasks.models import Alert, MonitorRun, Task
from tasks.monitors.runs import UNKNOWN_ALERT_AFTER, runs_refresh
from tasks.monitors.scheduler import scheduler_tick
from tests.monitors.factories import make_monitor

pytestmark = pytest.mark.django_db


@pytest.fixture
def paris_monitor(credential, catalog, settings):
    settings.TIME_ZONE = "America/New_York"  # the site's zone: 03:00 when it is 09:00 in Paris
    return make_monitor(credential=credential, time_zone="Europe/Paris", time_of_day=time(9, 0))


def test_the_runs_table_shows_the_slot_in_the_monitors_zone(member_client, paris_monitor):
    scheduler_tick(now=paris_monitor.next_run_at + timedelta(minutes=1))
    page = member_client.get(reverse("monitors:detail", args=[paris_monitor.slug])).content.decode()
    runs = page.split("<tbody>")[1].split("</tbody>")[0]
    assert ">2026-01-01 09:00<" in runs and "03:00<" not in runs
    assert "Runs" in page and "(Europe/Paris time" in page


def test_a_skipped_runs_alert_and_a_runs_batch_name_read_in_the_monitors_zone(paris_monitor):
    paris_monitor.cap_per_run = Decimal("0")
    paris_monitor.save()
    scheduler_tick(now=paris_monitor.next_run_at + timedelta(minutes=1))
    alert = Alert.objects.get(kind=Alert.Kind.RUN_SKIPPED)
    assert "the run of 2026-01-01 09:00 (Europe/Paris) — " in alert.message


def test_a_runs_batch_and_its_unknown_tasks_alert_read_in_the_monitors_zone(paris_monitor):
    scheduler_tick(now=paris_monitor.next_run_at + timedelta(minutes=1))
    run = MonitorRun.objects.get()
    assert run.batch.name == "Hotels · Scheduled 2026-01-01 09:00 (Europe/Paris)"
    Task.objects.filter(batch=run.batch).update(status=Task.Status.UNKNOWN)
    runs_refresh(now=datetime.now(UTC) + UNKNOWN_ALERT_AFTER)
    assert "of the run of 2026-01-01 09:00 (Europe/Paris) are unknown" in Alert.objects.get().message


def test_the_monitors_list_shows_next_and_last_run_in_each_monitors_zone(member_client, paris_monitor):
    scheduler_tick(now=paris_monitor.next_run_at + timedelta(minutes=1))
    page = member_client.get(reverse("monitors:list")).content.decode()
    row = page.split("<tbody>")[1].split("</tr>")[0]
    assert ">2026-01-02 09:00<" in row  # the next run
    assert "2026-01-01 09:00 " in row  # the last run
    assert "03:00<" not in row and "Europe/Paris" in row


def test_the_runs_charts_label_each_run_in_the_monitors_zone(member_client, paris_monitor):
    scheduler_tick(now=paris_monitor.next_run_at + timedelta(minutes=1))
    page = member_client.get(reverse("monitors:detail", args=[paris_monitor.slug])).content.decode()
    charts = page.split('id="runs-h"')[1].split("</section>")[0]
    assert "2026-01-01 09:00 · Scheduled" in charts and "03:00 · Scheduled" not in charts
