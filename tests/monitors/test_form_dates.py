"""The monitor form's dates: a problem caused by the start or end date is said at that date, not at the
cadence, with the input kept."""

from datetime import date, timedelta

import pytest
from django.urls import reverse

from tasks.models import Monitor
from tests.monitors.factories import make_prompt_version
from tests.monitors.test_views import form_data

pytestmark = pytest.mark.django_db


def _errors(member_client, **fields):
    response = member_client.post(reverse("monitors:create"), form_data(make_prompt_version(), **fields))
    assert response.status_code == 200 and not Monitor.objects.exists()
    return response.context["form"].errors


def test_an_end_date_before_the_start_date_is_said_at_the_end_date(member_client, credential, catalog):
    errors = _errors(member_client, start_date="2030-05-02", end_date="2030-05-01")
    assert errors["end_date"] == ["The end date is before the start date."]
    assert "cadence" not in errors


def test_an_end_date_already_past_is_said_at_the_end_date(member_client, credential, catalog):
    yesterday = date.today() - timedelta(days=2)
    errors = _errors(member_client, end_date=yesterday.isoformat())
    assert "No run is left by this end date" in errors["end_date"][0] and "cadence" not in errors


def test_a_cron_that_never_fires_is_still_said_at_the_cron(member_client, credential, catalog):
    errors = _errors(member_client, cadence="cron", cron="0 0 30 2 *")
    assert "not valid" in errors["cron"][0]


def test_every_n_days_ending_before_its_first_run_says_so_at_the_end_date(member_client, credential, catalog):
    """No start date given: the first run is the next time of day; an end date before it leaves no run."""
    errors = _errors(
        member_client,
        cadence="every_n_days",
        interval_days="3",
        end_date=(date.today() - timedelta(days=1)).isoformat(),
    )
    assert "No run is left by this end date" in errors["end_date"][0]
    assert "start date" not in errors["end_date"][0]


def test_an_active_monitor_whose_last_run_is_past_on_its_end_date_says_no_run_is_left(
    member_client, credential, catalog
):
    """Its end date is today and today's 09:00 has passed: the end date has not passed, its runs have."""
    from datetime import UTC, datetime, time

    from tests.monitors.factories import make_monitor

    monitor = make_monitor(
        credential=credential,
        time_of_day=time(9, 0),
        end_date=date(2026, 1, 1),
        now=datetime(2026, 1, 1, 10, 0, tzinfo=UTC),
    )
    assert monitor.next_run_at is None
    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    assert "None: the monitor is active and no run is left by its end date (2026-01-01)." in page


def test_every_n_days_without_n_is_said_at_every_n_days(member_client, credential, catalog):
    errors = _errors(member_client, cadence="every_n_days", interval_days="")
    assert "Every how many days?" in errors["interval_days"][0] and "cadence" not in errors


def test_chosen_weekdays_without_a_day_is_said_at_the_weekdays(member_client, credential, catalog):
    errors = _errors(member_client, cadence="weekdays")
    assert errors["weekdays"] == ["Choose at least one weekday."] and "cadence" not in errors


def test_the_hosts_localtime_is_not_offered_as_a_time_zone(member_client, credential, catalog):
    """The system's zone list holds "localtime", the server's own zone: a monitor in it would run at
    another hour once the server moves; it is not an IANA zone."""
    page = member_client.get(reverse("monitors:create")).content.decode()
    assert '<option value="localtime"' not in page and '<option value="Europe/Paris"' in page


def test_a_monitor_saved_in_localtime_keeps_it_on_its_edit_page_marked(
    member_client, credential, catalog, member_user
):
    """Saved before it was withdrawn: its edit page must not show (and save) the list's first zone."""
    from tests.monitors.factories import make_monitor

    monitor = make_monitor(credential=credential, owner=member_user, time_zone="localtime")
    page = member_client.get(reverse("monitors:edit", args=[monitor.slug])).content.decode()
    marked = "localtime (the server&#x27;s own zone: choose yours)"
    assert f'<option value="localtime" selected>{marked}</option>' in page
