"""TagMonth (issue 16): the tags index reads whole months from it, and its figures stay those of the tasks
whatever the rollup's watermark does (a month's end, a reopened day, a rebuild, a time zone change)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Max, Min, Sum
from django.test import override_settings
from django.utils import timezone

from tasks.history import tags
from tasks.models import SpendDay, TagMonth, Task
from tasks.spend import figures
from tasks.spend.rollup import rollup_reopen, spend_rollup
from tests.factories import make_task
from tests.spend.test_spend import _at
from tests.spend.test_spend_rollup import _tags_from_tasks, history  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("history")]


def _assert_index_equals_tasks():
    rows = {row["tag"]: row for row in tags.tag_list(sort="tag")}
    expected = _tags_from_tasks()
    assert sorted(rows) == sorted(expected)
    for tag, want in expected.items():
        row = rows[tag]
        assert (row["count"], row["active"]) == (want["count"], want["active"]), tag
        assert row["total"] == want["total"].quantize(Decimal("0.000001")), tag
        assert (row["first_run"], row["last_run"]) == (want["first_run"], want["last_run"]), tag


def _assert_months_equal_days():
    """Every TagMonth row is its month's SpendDay tag rows summed, and no month is missing."""
    for row in TagMonth.objects.all():
        month_end = (row.month + timedelta(days=32)).replace(day=1)
        days = SpendDay.objects.filter(dimension="tag", tag=row.tag, day__gte=row.month, day__lt=month_end)
        want = days.aggregate(s=Sum("spend"), n=Sum("task_count"), f=Min("first_at"), last=Max("last_at"))
        assert (row.spend, row.task_count, row.first_at, row.last_at) == (
            want["s"],
            want["n"],
            want["f"],
            want["last"],
        ), row
    months = {
        (d.replace(day=1), t)
        for d, t in SpendDay.objects.filter(dimension="tag").exclude(tag="").values_list("day", "tag")
    }
    assert set(TagMonth.objects.values_list("month", "tag")) == months


def test_the_rollup_keeps_a_row_per_tag_and_month_equal_to_its_days():
    spend_rollup()

    assert TagMonth.objects.filter(tag="team-a").count() >= 3  # DAYS_BACK spans three months
    _assert_months_equal_days()
    _assert_index_equals_tasks()


def test_the_index_equals_the_tasks_when_the_watermark_is_a_months_last_day():
    last_of_previous = timezone.localdate().replace(day=1) - timedelta(days=1)
    spend_rollup(through=last_of_previous)
    assert figures.rolled_through() == last_of_previous

    _assert_index_equals_tasks()


def test_the_index_equals_the_tasks_after_a_day_two_months_back_is_reopened():
    spend_rollup()
    reopened = timezone.localdate().replace(day=1) - timedelta(days=40)
    task = Task.objects.filter(tag="team-a", created_at__gte=_at(reopened)).order_by("created_at").first()
    Task.objects.filter(pk=task.pk).update(spend=task.spend + Decimal("1.5"))
    with transaction.atomic():
        rollup_reopen(created_at=task.created_at)

    # Whole months before the reopened day are still read from TagMonth, that month's days from the tasks.
    _assert_index_equals_tasks()
    spend_rollup()
    _assert_months_equal_days()
    _assert_index_equals_tasks()


def test_a_rebuild_since_a_date_rebuilds_the_months_it_passes():
    spend_rollup()
    since = timezone.localdate() - timedelta(days=50)
    make_task(tag="late", spend=Decimal("2"), created_at=_at(since))  # written with a past date (a restore)

    spend_rollup(since=since)

    assert TagMonth.objects.filter(tag="late").get().spend == Decimal("2")
    _assert_months_equal_days()
    _assert_index_equals_tasks()


def test_a_new_time_zone_starts_the_months_again():
    spend_rollup()
    with override_settings(TIME_ZONE="America/New_York"), timezone.override("America/New_York"):
        spend_rollup()
        _assert_months_equal_days()
        _assert_index_equals_tasks()


ODD_TAGS = [
    "team-a:parks/fr",
    "a b?c#d%e",
    "~x",
    "a//b",
    "./x",
    "x\ny",
    "é ü/ß",
    "a+b&c=d",
    "'\"<>",
    "..",
    "x/",
]


def test_the_index_links_each_tag_as_reverse_and_the_url_tag_do():
    from django.template.defaultfilters import urlencode
    from django.urls import reverse

    from tasks.history.tag_links import tag_page_urls, with_links

    url = tag_page_urls()
    for tag in ODD_TAGS:
        assert url(tag) == reverse("history:tag_detail", kwargs={"tag": tag}), tag
    now = timezone.now()
    rows = with_links([{"tag": tag, "first_run": now, "last_run": now} for tag in ODD_TAGS])
    for row in rows:
        assert row["tasks_url"] == f"{reverse('history:task_list')}?tag={urlencode(row['tag'])}"


def test_the_index_page_links_open_each_tags_page(team_admin_client):
    for tag in ODD_TAGS:
        make_task(tag=tag)

    page = team_admin_client.get("/tags/").content.decode()

    from django.urls import reverse

    for tag in ODD_TAGS:
        href = reverse("history:tag_detail", kwargs={"tag": tag})
        assert f'href="{href}"' in page.replace("&amp;", "&").replace("&#x27;", "'"), tag
        assert team_admin_client.get(href).status_code == 200, tag
