"""A cron expression is five fields, minute to weekday, as cron reads it: cronsim also takes a sixth, the
seconds, which would make a monitor due every few seconds (a paid run at each scheduler tick)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from tasks.models import Monitor, MonitorRun, Task
from tasks.monitors.scheduler import scheduler_tick
from tests.monitors.factories import make_monitor, make_prompt_version
from tests.monitors.test_views import form_data

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("cron", ["*/10 * * * * *", "0 0 9 * * *"])
def test_a_cron_expression_with_a_seconds_field_is_a_field_error_with_the_input_kept(
    member_client, credential, catalog, cron
):
    version = make_prompt_version()
    response = member_client.post(
        reverse("monitors:create"), form_data(version, cadence="cron", cron=cron, name="Every ten seconds")
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert (
        f"The cron expression “{cron}” has 6 fields: give 5 (minute, hour, day of month, month, day of "
        "week); a monitor runs at most once a minute."
    ) in page.replace("&#x27;", "'")
    assert f'value="{cron}"' in page and not Monitor.objects.exists()


def test_a_blank_cron_expression_asks_for_one(member_client, credential, catalog):
    version = make_prompt_version()
    response = member_client.post(reverse("monitors:create"), form_data(version, cadence="cron", cron=""))
    assert "Give a cron expression: 5 fields" in response.content.decode()
    assert not Monitor.objects.exists()


def saved_before_the_check(credential, now):
    """A monitor saved with a 6-field expression before the form refused one, due now."""
    monitor = make_monitor(credential=credential, cadence=Monitor.Cadence.CRON, cron="0 9 * * *", now=now)
    Monitor.objects.filter(pk=monitor.pk).update(cron="*/10 * * * * *", next_run_at=now)
    monitor.refresh_from_db()
    return monitor


def test_a_monitor_saved_earlier_with_a_seconds_field_runs_no_more_and_its_page_says_why(
    member_client, credential, catalog
):
    now = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    monitor = saved_before_the_check(credential, now)

    for tick in range(4):  # each tick would have been a paid run
        scheduler_tick(now=now + timedelta(seconds=30 * tick))

    assert not MonitorRun.objects.exists() and not Task.objects.exists()
    monitor.refresh_from_db()
    assert monitor.next_run_at is None
    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    assert (
        "It does not run. The cron expression “*/10 * * * * *” has 6 fields: give 5 (minute, hour, day of "
        "month, month, day of week); a monitor runs at most once a minute. Edit the monitor to give it a "
        "cadence that runs."
    ) in page.replace("&#x27;", "'")
    assert 'class="upcoming"' not in page
