"""The daily spend rollup: settled days read from SpendDay give exactly the figures of the tasks."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.tasks import default_task_backend
from django.utils import timezone

from tasks.history import tags
from tasks.models import Credential, SpendDay, SpendRollup, SpendWeek, Task
from tasks.spend import figures, jobs, periods, reports
from tasks.spend.rollup import last_settled_day, rollup_next_run, rollup_reopen, spend_rollup
from tests.factories import make_credential, make_task, make_template_version, make_user
from tests.spend.test_spend import _at, _tasks_behind

pytestmark = pytest.mark.django_db

DAYS_BACK = 75  # this month, last month and the month before are all partly rolled up


@pytest.fixture
def history(team_admin):
    """Tasks on every day of the last ten weeks, over people, providers, models, credentials, tags,
    templates and statuses; active ones only in the last days, as in real life."""
    today = timezone.localdate()
    alice, bob = make_user("alice"), make_user("bob")
    aisa = make_credential("AIsa main")
    direct = make_credential("DataForSEO direct", kind=Credential.Kind.DATAFORSEO, login="me@example.com")
    version = make_template_version("Brand check")
    people, credentials, tags = [alice, bob, None], [aisa, direct], ["team-a", "", "team-b"]
    for offset in range(DAYS_BACK + 1):
        day = today - timedelta(days=offset)
        for n in range(1 + offset % 3):
            i = offset + n
            fields = {
                "submitted_by": people[i % 3],
                "credential": credentials[i % 2],
                "provider": "claude" if i % 4 == 0 else "chat_gpt",
                "tag": tags[i % 3],
                "template_version": version if i % 5 == 0 else None,
                "money_spent": Decimal("0.000317") * (i % 7 + 1),
                "created_at": _at(day, hour=(3 * i) % 24),
            }
            if offset == 0 and n == 0:
                fields["status"] = Task.Status.SUBMITTED  # still in flight today: charge at post
            elif i % 11 == 0:
                fields["status"] = Task.Status.FAILED
            elif i % 13 == 0:
                # Given up after 72 hours: its charge at post stays, never final.
                fields.update(status=Task.Status.FAILED, spend=Decimal("0.0102"), spend_is_final=False)
            elif i % 17 == 0:
                fields.update(status=Task.Status.UNKNOWN, upstream_task_id=None)
            make_task(**fields)
    return {"alice": alice, "bob": bob, "aisa": aisa, "template": version.template}


def _without_rollup(monkeypatch):
    monkeypatch.setattr(figures, "rolled_through", lambda: None)


def _figures(period, granularity="day"):
    total, breakdowns = reports.spend_report(period=period, granularity=granularity)
    return total, [(b.key, b.rows, b.total, b.note) for b in breakdowns]


PERIODS = {
    "this_month": lambda: periods.period_preset("this_month"),
    "last_month": lambda: periods.period_preset("last_month"),
    "last_7": lambda: periods.period_preset("last_7"),
    "last_30": lambda: periods.period_preset("last_30"),
    "custom_60": lambda: periods.period_custom(
        start=timezone.localdate() - timedelta(days=59), end=timezone.localdate()
    ),
}


def test_a_day_is_settled_once_it_ended_more_than_half_an_hour_ago():
    tz = timezone.get_default_timezone()

    assert last_settled_day(now=datetime(2026, 3, 22, 3, 0, tzinfo=tz)) == date(2026, 3, 21)
    assert last_settled_day(now=datetime(2026, 3, 22, 0, 10, tzinfo=tz)) == date(2026, 3, 20)
    # The 21st ended exactly 30 minutes before: not more.
    assert last_settled_day(now=datetime(2026, 3, 22, 0, 30, tzinfo=tz)) == date(2026, 3, 20)


def test_the_rollup_covers_every_settled_day_and_stops_there(history):
    result = spend_rollup()

    assert result.through == last_settled_day()
    assert figures.rolled_through() == last_settled_day()
    assert min(result.rolled) == timezone.localdate() - timedelta(days=DAYS_BACK)
    assert max(SpendDay.objects.values_list("day", flat=True)) == last_settled_day()


def test_the_page_gives_the_same_figures_with_and_without_the_rollup(history, monkeypatch):
    """Every period, at every granularity, on one history (each case alone built the same ten weeks again)."""
    spend_rollup()
    cases = [(key, granularity) for key in PERIODS for granularity in ("day", "week", "month")]
    with_rollup = {(key, granularity): _figures(PERIODS[key](), granularity) for key, granularity in cases}

    _without_rollup(monkeypatch)

    differ = [(key, g) for key, g in cases if with_rollup[key, g] != _figures(PERIODS[key](), g)]
    assert not differ, f"the rollup changes the figures of {differ}"


@pytest.mark.parametrize("key", PERIODS)
def test_every_figure_over_rolled_up_and_live_days_equals_the_tasks_behind_its_link(history, key):
    period = PERIODS[key]()
    spend_rollup()

    total, breakdowns = reports.spend_report(period=period, granularity="week")

    tasks = list(_tasks_behind(total.url))
    assert total.spend == sum((t.spend for t in tasks), Decimal("0"))
    assert total.tasks == len(tasks)
    assert total.provisional == sum((t.spend for t in tasks if not t.spend_is_final), Decimal("0"))
    assert total.provisional_tasks == sum(1 for t in tasks if not t.spend_is_final)
    previous = list(_tasks_behind(total.previous_url))
    assert total.previous_spend == sum((t.spend for t in previous), Decimal("0"))
    assert total.previous_tasks == len(previous)
    for breakdown in breakdowns:
        assert breakdown.total == total.spend, breakdown.key
        for row in breakdown.rows:
            if row.url is None:
                continue
            tasks = list(_tasks_behind(row.url))
            assert row.spend == sum((t.spend for t in tasks), Decimal("0")), (breakdown.key, row.label)
            assert row.tasks == len(tasks), (breakdown.key, row.label)
            assert row.provisional == sum((t.spend for t in tasks if not t.spend_is_final), Decimal("0"))


def test_the_per_breakdown_selectors_agree_with_the_report_over_the_rollup(history):
    period = periods.period_preset("last_30")
    spend_rollup()

    total, breakdowns = reports.spend_report(period=period, granularity="day")

    assert total == reports.spend_total(period=period)
    expected = reports.spend_breakdowns(period=period, granularity="day")
    assert [(b.key, b.rows, b.total) for b in breakdowns] == [(b.key, b.rows, b.total) for b in expected]


def _rows():
    return sorted(
        SpendDay.objects.values_list(
            "day",
            "dimension",
            "submitted_by_id",
            "provider",
            "model_name",
            "credential_id",
            "template_version_id",
            "tag",
            "spend",
            "provisional",
            "task_count",
            "provisional_count",
        ),
        key=str,
    )


def test_running_the_rollup_twice_changes_nothing(history):
    first = spend_rollup()
    rows = _rows()
    figures = _figures(periods.period_preset("last_30"))

    second = spend_rollup()

    assert second.rolled == [] and second.through == first.through
    assert _rows() == rows
    assert _figures(periods.period_preset("last_30")) == figures


def test_rebuilding_gives_the_same_rows(history):
    spend_rollup()
    rows = _rows()

    call_command("rollup_spend", "--rebuild", stdout=StringIO())

    assert _rows() == rows


def test_the_rollup_advances_one_day_at_a_time_as_days_settle(history):
    now = timezone.now()
    spend_rollup(now=now - timedelta(days=1))
    through = figures.rolled_through()

    result = spend_rollup(now=now)

    assert result.rolled == [through + timedelta(days=1)]


def test_tasks_written_with_past_dates_need_a_rebuild_from_their_day(history, monkeypatch):
    spend_rollup()
    day = timezone.localdate() - timedelta(days=20)
    make_task(submitted_by=history["alice"], tag="late", created_at=_at(day))
    period = periods.period_preset("last_30")

    spend_rollup(since=day)

    by_tag = reports.spend_by(period=period, dimension="tag")
    assert "late" in {row.label for row in by_tag.rows}
    with_rollup = _figures(period)
    _without_rollup(monkeypatch)
    assert with_rollup == _figures(period)


def test_a_day_with_a_task_still_active_past_the_polling_limit_is_not_rolled_up(history, monkeypatch):
    stuck_day = timezone.localdate() - timedelta(days=10)
    make_task(status=Task.Status.PENDING, created_at=_at(stuck_day))  # the worker was down

    result = spend_rollup()

    assert result.stopped_at == stuck_day
    assert figures.rolled_through() == stuck_day - timedelta(days=1)
    period = periods.period_preset("last_30")
    with_rollup = _figures(period)
    _without_rollup(monkeypatch)
    assert with_rollup == _figures(period)


def test_rows_bucketed_in_another_time_zone_are_ignored_and_rebuilt(history, settings):
    spend_rollup()
    SpendRollup.objects.update(time_zone="Pacific/Auckland")

    assert figures.rolled_through() is None
    spend_rollup()
    assert SpendRollup.objects.get().time_zone == settings.TIME_ZONE
    assert figures.rolled_through() == last_settled_day()


def test_a_deleted_persons_rolled_up_spend_moves_to_nobody_as_on_the_tasks(history, monkeypatch):
    spend_rollup()
    history["bob"].delete()
    period = periods.period_preset("last_30")

    by_person = reports.spend_by(period=period, dimension="person")

    assert "bob" not in {row.label for row in by_person.rows}
    with_rollup = _figures(period)
    _without_rollup(monkeypatch)
    assert with_rollup == _figures(period)


def test_without_tasks_the_rollup_covers_the_settled_days():
    result = spend_rollup()

    assert result.rolled == [] and result.through == last_settled_day()
    assert reports.spend_total(period=periods.period_preset("last_30")).spend == 0


def test_the_command_rolls_up_and_says_how_far(history):
    out = StringIO()

    call_command("rollup_spend", stdout=out)

    assert f"covers the days through {last_settled_day()}" in out.getvalue()
    assert figures.rolled_through() == last_settled_day()


def test_the_daily_job_rolls_up_and_keeps_a_single_chain(history):
    default_task_backend.clear()
    out = StringIO()

    call_command("rollup_spend", "--enqueue", stdout=out)
    jobs.rollup_spend_hourly.call()
    jobs.rollup_spend_hourly.call()  # enqueued again at another worker start

    assert figures.rolled_through() == last_settled_day()
    queued = [r for r in default_task_backend.results if r.task.name == "rollup_spend_hourly"]
    assert len(queued) == 2  # the one from the command, and one for after midnight
    assert queued[1].task.run_after == rollup_next_run()
    assert SpendRollup.objects.get().next_run_at == rollup_next_run()


# --- The tags index reads the rollup too ------------------------------------------------------------


def _tags_from_tasks() -> dict[str, dict]:
    """Each tag's figures, summed here from the tasks themselves."""
    tags: dict[str, dict] = {}
    for task in Task.objects.exclude(tag=""):
        row = tags.setdefault(task.tag, {"tag": task.tag, "count": 0, "total": Decimal("0"), "active": 0})
        row["count"] += 1
        row["total"] += task.spend
        row["active"] += task.status in Task.ACTIVE_STATUSES
        row["first_run"] = min(row.get("first_run", task.created_at), task.created_at)
        row["last_run"] = max(row.get("last_run", task.created_at), task.created_at)
    return tags


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        ("-last", lambda row: (-row["last_run"].timestamp(), row["tag"])),
        ("-count", lambda row: (-row["count"], row["tag"])),
        ("-spend", lambda row: (-row["total"], row["tag"])),
        ("tag", lambda row: row["tag"]),
    ],
)
def test_the_tags_index_over_the_rollup_equals_the_tasks(history, sort, order):
    from tasks.spend import figures

    make_task(tag="free", status=Task.Status.FAILED, spend=Decimal("0"), created_at=_at(timezone.localdate()))
    make_task(tag="team-b", status=Task.Status.PENDING)  # today: after the rollup, still active
    spend_rollup()
    assert figures.rolled_through() is not None

    rows = tags.tag_list(sort=sort)

    expected = sorted(_tags_from_tasks().values(), key=order)
    assert [row["tag"] for row in rows] == [row["tag"] for row in expected]
    for row, want in zip(rows, expected, strict=True):
        assert row["count"] == want["count"] and row["active"] == want["active"], row["tag"]
        assert row["total"] == want["total"].quantize(Decimal("0.000001")), row["tag"]
        assert (row["first_run"], row["last_run"]) == (want["first_run"], want["last_run"]), row["tag"]


def test_the_tags_index_filter_applies_to_rolled_and_live_days(history, monkeypatch):

    spend_rollup()
    with_rollup = tags.tag_list(q="TEAM-A")
    _without_rollup(monkeypatch)

    assert [row["tag"] for row in with_rollup] == ["team-a"]
    assert with_rollup == tags.tag_list(q="TEAM-A")


def test_the_tags_index_reads_no_task_of_a_rolled_day(history, django_assert_max_num_queries):
    from tasks.spend import figures

    spend_rollup()
    # Alter a rolled day's task behind the rollup's back: the index keeps the rollup's figure for it.
    day = figures.rolled_through()
    Task.objects.filter(tag="team-a", created_at__lt=_at(day)).update(spend=Decimal("99"))

    with django_assert_max_num_queries(4):
        rows = tags.tag_list()

    assert all(row["total"] < 99 for row in rows)


def test_one_persons_share_comes_with_the_total_from_the_same_figures(history):
    spend_rollup()
    period = periods.period_preset("this_month")
    alice = history["alice"]

    total, mine = reports.spend_total_and_person(period=period, person_id=alice.pk)

    assert total == reports.spend_total(period=period)
    rows = reports.spend_by(period=period, dimension="person").rows
    assert mine == next(row.spend for row in rows if row.key == str(alice.pk)) > 0
    assert reports.spend_total_and_person(period=period, person_id=-1)[1] == 0


# Whole weeks summed once more (SpendWeek): a long period reads one row per group and week.


def _week_sums_from_days():
    """Each whole week's sums per group, computed from its SpendDay rows in Python."""
    sums = {}
    for day, *group, spend, provisional, count, provisional_count in _rows():
        key = (day - timedelta(days=day.weekday()), *group)
        old = sums.get(key, (Decimal("0"), Decimal("0"), 0, 0))
        sums[key] = (old[0] + spend, old[1] + provisional, old[2] + count, old[3] + provisional_count)
    return sums


def _week_rows():
    return {
        (week, *group): (spend, provisional, count, provisional_count)
        for week, *group, spend, provisional, count, provisional_count in SpendWeek.objects.values_list(
            "week",
            "dimension",
            "submitted_by_id",
            "provider",
            "model_name",
            "credential_id",
            "template_version_id",
            "tag",
            "spend",
            "provisional",
            "task_count",
            "provisional_count",
        )
    }


def _assert_weeks_equal_their_days():
    weeks_through = SpendRollup.objects.get().weeks_through
    expected = {
        key: sums
        for key, sums in _week_sums_from_days().items()
        if key[0] + timedelta(days=6) <= weeks_through
    }
    assert _week_rows() == expected


def test_every_whole_week_up_to_the_watermark_is_the_sum_of_its_days(history):
    result = spend_rollup()

    weeks_through = SpendRollup.objects.get().weeks_through
    assert weeks_through.weekday() == 6  # a Sunday
    assert result.through - timedelta(days=6) <= weeks_through <= result.through
    assert SpendWeek.objects.exists()
    _assert_weeks_equal_their_days()


@pytest.mark.parametrize("key", ["last_30", "custom_60", "last_month"])
def test_a_period_with_whole_weeks_reads_them_and_gives_the_figures_of_the_tasks(history, monkeypatch, key):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    period = PERIODS[key]()
    spend_rollup()
    with CaptureQueriesContext(connection) as queries:
        with_weeks = _figures(period, "week")
    assert any("tasks_spendweek" in query["sql"] for query in queries.captured_queries)

    _without_rollup(monkeypatch)

    assert with_weeks == _figures(period, "week")


def test_a_day_changed_inside_a_summed_week_rebuilds_the_week(history, monkeypatch):
    spend_rollup()
    day = timezone.localdate() - timedelta(days=20)
    task = Task.objects.filter(created_at__date=day).first()
    Task.objects.filter(pk=task.pk).update(spend=task.spend + Decimal("1.234567"))
    make_task(submitted_by=history["bob"], tag="late", created_at=_at(day), money_spent=Decimal("0.5"))
    # Re-roll that day only, though later weeks are summed too.
    spend_rollup(since=day, through=day)

    _assert_weeks_equal_their_days()
    for key in ("last_30", "custom_60"):
        period = PERIODS[key]()
        with_weeks = _figures(period, "week")
        monkeypatch.setattr(figures, "rolled_through", lambda: None)
        assert with_weeks == _figures(period, "week"), key
        monkeypatch.undo()


def test_a_reopened_day_is_read_from_the_tasks_until_rolled_up_again_with_its_week(history, monkeypatch):
    from django.db import transaction

    spend_rollup()
    day = timezone.localdate() - timedelta(days=25)
    task = Task.objects.filter(created_at__date=day).first()
    with transaction.atomic():
        Task.objects.filter(pk=task.pk).update(spend=task.spend + Decimal("2"))
        rollup_reopen(created_at=task.created_at)
    period = PERIODS["custom_60"]()
    expected = None

    for _ in range(2):  # reopened, then rolled up again
        with_rollup = _figures(period, "week")
        monkeypatch.setattr(figures, "rolled_through", lambda: None)
        expected = _figures(period, "week")
        monkeypatch.undo()
        assert with_rollup == expected
        spend_rollup()
    _assert_weeks_equal_their_days()


def test_weeks_missing_on_an_existing_rollup_are_summed_by_the_next_run(history):
    spend_rollup()
    rows = _week_rows()
    SpendWeek.objects.all().delete()
    SpendRollup.objects.update(weeks_through=None)

    spend_rollup()

    assert _week_rows() == rows
