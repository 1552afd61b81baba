"""“Every N days” counts from when the monitor is saved (or its start date), never from a fixed epoch; the
monitors saved before that keep their schedule."""

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from tasks.models import Monitor
from tasks.monitors.cadence import Cadence, every_n_days_start
from tests.monitors.factories import interval_off_the_old_epoch, make_prompt_version
from tests.monitors.test_views import form_data

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")


def test_the_first_day_is_today_while_the_time_is_still_ahead_else_tomorrow():
    before = datetime(2026, 12, 7, 8, 0, tzinfo=BERLIN)
    after = datetime(2026, 12, 7, 10, 0, tzinfo=BERLIN)
    assert every_n_days_start(time_of_day=time(9, 0), time_zone="Europe/Berlin", now=before) == date(
        2026, 12, 7
    )
    assert every_n_days_start(time_of_day=time(9, 0), time_zone="Europe/Berlin", now=after) == date(
        2026, 12, 8
    )


def test_over_spring_forward_the_days_are_counted_in_local_days():
    """Saved on Saturday 27 March 2027 at 10:00 in Berlin, every 2 days at 09:00: Sunday 28 (09:00 CEST, the
    clocks moved at 02:00 that night), then Tuesday 30."""
    now = datetime(2027, 3, 27, 10, 0, tzinfo=BERLIN)
    start = every_n_days_start(time_of_day=time(9, 0), time_zone="Europe/Berlin", now=now)
    cadence = Cadence(
        kind="every_n_days",
        interval_days=2,
        time_of_day=time(9, 0),
        time_zone="Europe/Berlin",
        start_date=start,
    )
    slots = cadence.slots_between(now, now + timedelta(days=4))
    assert [s.astimezone(BERLIN).strftime("%d %H:%M") for s in slots] == ["28 09:00", "30 09:00"]
    assert slots[0] == datetime(2027, 3, 28, 7, 0, tzinfo=UTC)


def test_a_time_in_the_spring_forward_gap_still_runs_that_day():
    now = datetime(2027, 3, 28, 1, 0, tzinfo=BERLIN)  # 02:30 does not exist that day; it runs at 03:30
    assert every_n_days_start(time_of_day=time(2, 30), time_zone="Europe/Berlin", now=now) == date(
        2027, 3, 28
    )


def test_a_new_every_n_days_monitor_first_runs_at_the_next_time_of_day_shown_on_its_page(
    member_client, credential, catalog
):
    now = timezone.now().astimezone(UTC)
    at = (now + timedelta(hours=1)).replace(second=0, microsecond=0)
    n = interval_off_the_old_epoch(at.date())
    data = form_data(
        make_prompt_version(),
        cadence="every_n_days",
        interval_days=str(n),
        time_of_day=at.strftime("%H:%M"),
        time_zone="UTC",
    )
    response = member_client.post(reverse("monitors:create"), data, follow=True)

    monitor = Monitor.objects.get()
    assert monitor.next_run_at == at
    assert monitor.start_date == at.date()  # kept, so later edits and deploys never move the schedule
    page = response.content.decode()
    assert f"next run {at:%a %Y-%m-%d %H:%M} (UTC)." in page
    upcoming = page.split('<ol class="upcoming">')[1].split("</ol>")[0]
    assert f"{at:%Y-%m-%d %H:%M}" in upcoming.split("</li>")[0]
    assert f"{at + timedelta(days=n):%Y-%m-%d %H:%M}" in upcoming.split("</li>")[1]
    edit = member_client.get(reverse("monitors:edit", args=[monitor.slug])).content.decode()
    assert f'value="{at:%Y-%m-%d}"' in edit


def test_an_edit_keeps_the_day_an_every_n_days_monitor_counts_from(member_client, credential, catalog):
    version = make_prompt_version()
    data = form_data(version, cadence="every_n_days", interval_days="3", time_zone="UTC")
    member_client.post(reverse("monitors:create"), data)
    monitor = Monitor.objects.get()
    first = monitor.start_date

    edit = {
        **data,
        "name": "Renamed",
        "start_date": first.isoformat(),
        "edited_at": monitor.updated_at.isoformat(),
    }
    member_client.post(reverse("monitors:edit", args=[monitor.slug]), edit)
    monitor.refresh_from_db()
    assert monitor.name == "Renamed" and monitor.start_date == first


def test_a_daily_monitor_gets_no_start_date(member_client, credential, catalog):
    member_client.post(reverse("monitors:create"), form_data(make_prompt_version()))
    assert Monitor.objects.get().start_date is None


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"cadence": "every_n_days", "interval_days": 3, "start_date": date(2026, 12, 7)},
         "Every 3 days at 09:00, counted from 2026-12-07"),
        ({"cadence": "daily"}, "Every day at 09:00"),
        ({"cadence": "hourly", "minute": 15}, "Every hour at :15"),
        ({"cadence": "weekdays", "weekdays": [0, 2, 4]}, "Mon, Wed, Fri at 09:00"),
        ({"cadence": "daily", "end_date": date(2027, 1, 31)}, "Every day at 09:00, until 2027-01-31"),
        ({"cadence": "cron", "cron": "0 9 * * 1-5"}, "Cron 0 9 * * 1-5"),
    ],
)  # fmt: skip
def test_the_monitor_page_says_its_cadence_in_full(member_client, credential, catalog, fields, words):
    from tests.monitors.factories import make_monitor

    monitor = make_monitor(credential=credential, **fields)
    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    assert f"{words} · UTC" in page


def test_the_forms_live_estimate_says_when_the_first_run_is(member_client, credential, catalog):
    now = timezone.now().astimezone(UTC)
    at = (now + timedelta(hours=1)).replace(second=0, microsecond=0)
    data = form_data(
        make_prompt_version(),
        cadence="every_n_days",
        interval_days=str(interval_off_the_old_epoch(at.date())),
        time_of_day=at.strftime("%H:%M"),
        time_zone="UTC",
    )
    page = member_client.post(
        reverse("monitors:estimate"), data, headers={"HX-Request": "true"}
    ).content.decode()
    assert (
        f'Next run: <time datetime="{at:%Y-%m-%dT%H:%M:%S}+00:00">{at:%a %Y-%m-%d %H:%M}</time> (UTC)' in page
    )
    assert not Monitor.objects.exists()


def test_a_paused_monitors_edit_estimate_says_its_next_run_comes_once_resumed(
    member_client, credential, catalog
):
    from tests.monitors.factories import make_monitor

    monitor = make_monitor(credential=credential, state=Monitor.State.PAUSED)
    data = form_data(monitor.template_version, name="Hotels", time_zone="UTC")
    page = member_client.post(
        reverse("monitors:estimate") + f"?monitor={monitor.slug}", data, headers={"HX-Request": "true"}
    ).content.decode()
    assert "09:00</time> (UTC), once resumed (it is paused)." in page
    edit = member_client.get(reverse("monitors:edit", args=[monitor.slug])).content.decode()
    assert f'hx-post="{reverse("monitors:estimate")}?monitor={monitor.slug}"' in edit


def test_over_spring_forward_the_page_shows_the_first_runs_at_09_00_local(member_client, credential, catalog):
    """Saved on Saturday 27 March 2027 at 10:00 in Berlin, every 2 days at 09:00: the first run is Sunday 28
    (the clocks moved at 02:00 that night), at 09:00 CEST, then every other day, all at 09:00."""
    from tasks.monitors.services import monitor_save
    from tests.monitors.factories import ROWS

    unsaved = Monitor(
        name="Hotels",
        template_version=make_prompt_version(),
        rows_text=ROWS,
        targets=[{"model_name": "gpt-4.1", "credential_id": credential.pk}],
        tag="hotels",
        cadence=Monitor.Cadence.EVERY_N_DAYS,
        interval_days=2,
        time_of_day=time(9, 0),
        time_zone="Europe/Berlin",
    )
    monitor = monitor_save(actor=None, unsaved=unsaved, now=datetime(2027, 3, 27, 10, 0, tzinfo=BERLIN))
    assert monitor.start_date == date(2027, 3, 28)
    assert monitor.next_run_at == datetime(2027, 3, 28, 7, 0, tzinfo=UTC)
    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    upcoming = page.split('<ol class="upcoming">')[1].split("</ol>")[0]
    shown = re.findall(r">(\w{3} \d{4}-\d\d-\d\d \d\d:\d\d)</time>", upcoming)
    assert shown == [
        "Sun 2027-03-28 09:00",
        "Tue 2027-03-30 09:00",
        "Thu 2027-04-01 09:00",
        "Sat 2027-04-03 09:00",
        "Mon 2027-04-05 09:00",
    ]
    assert "Every 2 days at 09:00, counted from 2027-03-28 · Europe/Berlin" in page
