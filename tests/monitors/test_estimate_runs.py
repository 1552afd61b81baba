"""The form's estimate counts every run of the next 30 days, however frequent the cadence: it stopped
counting at 800, so a monitor every 30 minutes (1440 runs) read as 800 runs and about half its cost."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from tasks.monitors.cadence import Cadence
from tasks.templatetags.spend_format import money
from tasks.upstream.providers import charge_per_task
from tests.monitors.factories import make_prompt_version
from tests.monitors.test_views import form_data

pytestmark = pytest.mark.django_db


def estimate_of(client, **fields) -> str:
    response = client.post(
        reverse("monitors:estimate"),
        form_data(make_prompt_version(), time_zone="UTC", **fields),
        headers={"HX-Request": "true"},
    )
    return " ".join(response.content.decode().split())


@pytest.mark.parametrize(("cron", "runs"), [("*/30 * * * *", 1440), ("* * * * *", 43200)])
def test_a_cadence_of_more_than_800_runs_a_month_is_estimated_with_all_of_them(
    member_client, credential, catalog, cron, runs
):
    page = estimate_of(member_client, cadence="cron", cron=cron)

    per_month = 6 * charge_per_task(mode="task_post") * runs
    assert f"about {runs} runs in the next 30 days: up to about <strong>{money(per_month)}</strong>" in page


def test_a_cadence_under_800_runs_a_month_is_counted_exactly(member_client, credential, catalog):
    page = estimate_of(member_client, cadence="hourly")
    assert "720 runs in the next 30 days: up to <strong>" in page and "about" not in page


def test_the_runs_of_weekdays_only_are_counted_on_those_days():
    """Every minute from 09:00 to 17:59, Monday to Friday: 540 runs on each of the 22 weekdays of the 30
    days from Monday 2 March 2026."""
    cadence = Cadence(kind="cron", cron="* 9-17 * * 1-5", time_zone="Europe/Paris")
    start = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)  # Monday 00:00 in Paris
    assert cadence.slot_count(start, start + timedelta(days=30)) == (22 * 540, False)
