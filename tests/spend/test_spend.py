"""The spend page: periods, totals, breakdowns matching the tasks behind their links, CSV, balance."""

import csv
import io
import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from tasks.models import Credential, Task
from tasks.spend import periods, reports
from tasks.templatetags.spend_format import money
from tests.factories import make_credential, make_task, make_task_being_sent, make_template_version, make_user

pytestmark = pytest.mark.django_db


def _at(day: date, hour: int = 12) -> datetime:
    return timezone.make_aware(datetime(day.year, day.month, day.day, hour))


def _tasks_behind(url: str):
    """The tasks the task list shows for a link's filters, selected here with the ORM directly."""
    params = dict(parse_qsl(urlsplit(url).query))
    tz = timezone.get_current_timezone()
    start = datetime.combine(date.fromisoformat(params.pop("date_from")), datetime.min.time(), tzinfo=tz)
    end = datetime.combine(date.fromisoformat(params.pop("date_to")), datetime.min.time(), tzinfo=tz)
    tasks = Task.objects.filter(created_at__gte=start, created_at__lt=end + timedelta(days=1))
    assert params.pop("model_requested", "1") == "1"  # `model` is the name asked for, as the lookup below
    lookups = {
        "person": "submitted_by_id",
        "provider": "provider",
        "model": "model_name",
        "credential": "credential_id",
        "tag": "tag",
        "template": "template_version__template_id",
    }
    for name, value in params.items():
        tasks = tasks.filter(**{lookups[name]: value})
    return tasks


@pytest.fixture
def spending(team_admin):
    """Tasks across two people, two providers, two credentials, tags and a template, this month and before."""
    today = timezone.localdate()
    first = today.replace(day=1)
    alice, bob = make_user("alice"), make_user("bob")
    aisa = make_credential("AIsa main")
    direct = make_credential("DataForSEO direct", kind=Credential.Kind.DATAFORSEO, login="me@example.com")
    version = make_template_version("Brand check")
    make_task(submitted_by=alice, credential=aisa, tag="team-a", created_at=_at(first))
    make_task(submitted_by=alice, credential=aisa, provider="claude", created_at=_at(today, 0))
    make_task(
        submitted_by=bob,
        credential=direct,
        tag="team-b",
        template_version=version,
        status=Task.Status.SUBMITTED,
        created_at=_at(first),
    )
    make_task(submitted_by=bob, credential=direct, status=Task.Status.FAILED, created_at=_at(today, 1))
    # Last month: counts for the comparison only.
    make_task(
        submitted_by=alice, credential=aisa, tag="team-a", created_at=_at(periods._add_months(first, -1))
    )
    return {"alice": alice, "bob": bob, "aisa": aisa, "direct": direct, "template": version.template}


def test_period_presets_and_their_previous_periods():
    today = date(2026, 3, 22)

    this_month = periods.period_preset("this_month", today=today)
    assert (this_month.start, this_month.end) == (date(2026, 3, 1), today)
    assert (this_month.previous().start, this_month.previous().end) == (date(2026, 2, 1), date(2026, 2, 22))

    last_month = periods.period_preset("last_month", today=today)
    assert (last_month.start, last_month.end) == (date(2026, 2, 1), date(2026, 2, 28))
    assert (last_month.previous().start, last_month.previous().end) == (date(2026, 1, 1), date(2026, 1, 31))

    last_7 = periods.period_preset("last_7", today=today)
    assert (last_7.start, last_7.end, last_7.days) == (date(2026, 3, 16), today, 7)
    assert (last_7.previous().start, last_7.previous().end) == (date(2026, 3, 9), date(2026, 3, 15))

    custom = periods.period_custom(start=date(2026, 1, 10), end=date(2026, 1, 1))
    assert (custom.start, custom.end) == (date(2026, 1, 1), date(2026, 1, 10))
    assert (custom.previous().start, custom.previous().end) == (date(2025, 12, 22), date(2025, 12, 31))


def test_month_to_date_on_the_31st_compares_with_a_shorter_month_without_overlap():
    period = periods.period_preset("this_month", today=date(2026, 3, 31))

    previous = period.previous()

    assert (previous.start, previous.end) == (date(2026, 2, 1), date(2026, 2, 28))


def test_total_counts_final_costs_and_charges_at_post_and_says_what_is_provisional(spending):
    total = reports.spend_total(period=periods.period_preset("this_month"))

    this_month = Task.objects.filter(created_at__gte=_at(timezone.localdate().replace(day=1), 0))
    assert total.spend == sum(t.spend for t in this_month)
    assert total.tasks == 4
    assert total.provisional == Decimal("0.0102")  # the submitted task's charge at post
    assert total.provisional_tasks == 1
    assert total.previous_spend == Decimal("0.0288")


def test_every_breakdown_figure_equals_the_tasks_behind_its_link(spending):
    period = periods.period_preset("this_month")

    for breakdown in reports.spend_breakdowns(period=period, granularity="day"):
        for row in breakdown.rows:
            if row.url is None:
                continue
            tasks = list(_tasks_behind(row.url))
            assert row.spend == sum((t.spend for t in tasks), Decimal("0")), (breakdown.key, row.label)
            assert row.tasks == len(tasks), (breakdown.key, row.label)


def test_breakdowns_add_up_to_the_total(spending):
    period = periods.period_preset("this_month")
    total = reports.spend_total(period=period)

    for breakdown in reports.spend_breakdowns(period=period, granularity="week"):
        assert breakdown.total == total.spend, breakdown.key


def test_links_carry_exactly_the_group_filter_and_the_period(spending):
    period = periods.period_preset("this_month")

    by_person = reports.spend_by(period=period, dimension="person")

    alice = next(row for row in by_person.rows if row.label == "alice")
    params = dict(parse_qsl(urlsplit(alice.url).query))
    assert urlsplit(alice.url).path == reverse("history:task_list")
    assert params == {
        "date_from": period.start.isoformat(),
        "date_to": period.end.isoformat(),
        "person": str(spending["alice"].pk),
    }
    by_template = reports.spend_by(period=period, dimension="template")
    assert {row.label for row in by_template.rows} == {"Brand check", "(no template)"}
    assert next(r for r in by_template.rows if r.label == "(no template)").url is None


def test_breakdowns_show_the_previous_period_beside_each_group(spending):
    by_tag = reports.spend_by(period=periods.period_preset("this_month"), dimension="tag")

    team_a = next(row for row in by_tag.rows if row.label == "team-a")
    assert team_a.previous_spend == Decimal("0.0288")
    assert team_a.spend == Decimal("0.0288")
    assert team_a.change == 0


def test_over_time_has_every_day_of_the_period_with_links_clipped_to_it(spending):
    period = periods.period_custom(start=date(2026, 1, 30), end=date(2026, 2, 2))

    days = reports.spend_over_time(period=period, granularity="day")
    weeks = reports.spend_over_time(period=period, granularity="week")

    assert [row.key for row in days.rows] == ["2026-01-30", "2026-01-31", "2026-02-01", "2026-02-02"]
    first_week = dict(parse_qsl(urlsplit(weeks.rows[0].url).query))
    assert first_week == {"date_from": "2026-01-30", "date_to": "2026-02-01"}


def test_the_page_answers_who_spent_what_on_which_model_with_a_comparison(spending, team_admin_client):
    response = team_admin_client.get(reverse("spend:page"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "By person" in html and "By model" in html and "alice" in html and "gpt-4.1-mini" in html
    assert "Change vs" in html
    assert "Still provisional" in html
    assert "<svg" in html and "<script" not in html.split("</head>")[1]
    assert 'style="' not in html


def test_htmx_requests_get_only_the_report_fragment(spending, team_admin_client):
    response = team_admin_client.get(
        reverse("spend:page"), {"period": "last_7"}, headers={"HX-Request": "true"}
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="spend-report"')
    assert "<html" not in html


@pytest.mark.parametrize(
    "query",
    [
        {"period": "custom", "date_from": "not-a-date"},
        {"period": "custom"},
        {"period": "bogus", "by": "year"},
        {"date_from": "2026-02-30"},
        {"period": "custom", "date_from": "1900-01-01", "date_to": "2999-12-31"},
        {"period": "custom", "date_from": "9999-12-01", "date_to": "9999-12-31"},
        {"period": "custom", "date_from": "0001-01-01"},
    ],
)
def test_bad_period_input_shows_this_month_and_keeps_the_input(team_admin_client, query):
    response = team_admin_client.get(reverse("spend:page"), query)

    assert response.status_code == 200
    for value in query.values():
        assert value in response.content.decode()


@pytest.mark.parametrize("page", ["spend", "visibility"])
def test_a_date_the_date_input_cannot_show_is_named_in_its_error(team_admin_client, page):
    """A browser's date input shows nothing for "2026-02-30" (a stale bookmark, an edited URL): beside an
    empty input, "Enter a valid date." alone would not say which date was wrong."""
    from tasks.models import BrandSet

    url = reverse("spend:page")
    if page == "visibility":
        url = reverse("visibility:set_page", args=[BrandSet.objects.create(name="Coffee").pk])

    html = team_admin_client.get(url, {"period": "custom", "date_from": "2026-02-30"}).content.decode()

    assert '<span class="field-error">“2026-02-30”: Enter a valid date.</span>' in html


def test_labels_are_escaped_in_tables_and_charts(team_admin_client, team_admin):
    make_task(submitted_by=team_admin, tag='<script>alert("x")</script>')

    html = team_admin_client.get(reverse("spend:page")).content.decode()

    assert "<script>alert" not in html
    assert "&lt;script&gt;alert" in html


def test_csv_export_equals_the_page(spending, team_admin_client):
    query = {"period": "this_month", "by": "day"}
    page = team_admin_client.get(reverse("spend:page"), query)
    export = team_admin_client.get(reverse("spend:export"), query)

    assert export["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    total = page.context["total"]
    assert rows[0]["breakdown"] == "total"
    assert Decimal(rows[0]["spend_usd"]) == total.spend
    assert Decimal(rows[0]["provisional_usd"]) == total.provisional
    expected = [
        (b.key, row.label, row.spend, row.tasks) for b in page.context["breakdowns"] for row in b.rows
    ]
    exported = [(r["breakdown"], r["group"], Decimal(r["spend_usd"]), int(r["tasks"])) for r in rows[1:]]
    assert exported == expected
    html = page.content.decode()
    for _, label, amount, _ in exported:
        assert money(amount) in html
        assert label in html


def test_csv_neutralises_formulas_in_tags(team_admin_client, team_admin):
    make_task(submitted_by=team_admin, tag="=HYPERLINK(1)")

    content = b"".join(team_admin_client.get(reverse("spend:export")).streaming_content).decode()

    assert "'=HYPERLINK(1)" in content


class _FakeClient:
    calls: list = []
    closed: list = []

    def __init__(self, credential):
        self.credential = credential

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        self.closed.append(self.credential.name)

    @classmethod
    def for_credential(cls, credential, **kwargs):
        cls.calls.append(credential.name)
        return cls(credential)

    def user_data(self):
        from tasks.upstream.outcomes import UpstreamError

        if self.credential.name == "Broken":
            raise UpstreamError("DataForSEO answered 401: wrong login or password")
        return {"login": "me@example.com", "money": {"total": 100, "balance": 42.5}}


def test_balance_shows_dataforseo_accounts_and_skips_aisa_quietly(team_admin_client, monkeypatch):
    monkeypatch.setattr("tasks.upstream.clients.LLMResponsesClient", _FakeClient)
    _FakeClient.calls = []
    make_credential("AIsa key")
    make_credential("Direct", kind=Credential.Kind.DATAFORSEO, login="me@example.com")
    make_credential("Broken", kind=Credential.Kind.DATAFORSEO, login="me@example.com")

    response = team_admin_client.get(reverse("spend:balance"), headers={"HX-Request": "true"})

    html = response.content.decode()
    assert response.status_code == 200
    assert "$42.50" in html
    assert "Broken: balance unavailable" in html and "401" in html
    assert sorted(_FakeClient.calls) == ["Broken", "Direct"]
    assert "<html" not in html


def test_the_balance_page_closes_every_client_it_opens_even_when_the_upstream_fails(
    team_admin_client, monkeypatch
):
    monkeypatch.setattr("tasks.upstream.clients.LLMResponsesClient", _FakeClient)
    _FakeClient.calls, _FakeClient.closed = [], []
    make_credential("Direct", kind=Credential.Kind.DATAFORSEO, login="me@example.com")
    make_credential("Broken", kind=Credential.Kind.DATAFORSEO, login="me@example.com")

    team_admin_client.get(reverse("spend:balance"), headers={"HX-Request": "true"})

    assert sorted(_FakeClient.closed) == sorted(_FakeClient.calls) == ["Broken", "Direct"]


@pytest.mark.parametrize("balance", [1e30, "NaN", "Infinity"])
def test_a_balance_that_is_not_an_amount_is_said_to_be_unreadable(team_admin_client, monkeypatch, balance):
    monkeypatch.setattr(_FakeClient, "user_data", lambda self: {"money": {"total": 100, "balance": balance}})
    monkeypatch.setattr("tasks.upstream.clients.LLMResponsesClient", _FakeClient)
    make_credential("Direct", kind=Credential.Kind.DATAFORSEO, login="me@example.com")

    response = team_admin_client.get(reverse("spend:balance"), headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert "Direct: balance unavailable (The account data holds no balance.)" in response.content.decode()


def test_balance_without_dataforseo_credentials_says_so(team_admin_client):
    make_credential("AIsa key")

    response = team_admin_client.get(reverse("spend:balance"))

    assert response.status_code == 200
    assert "AIsa keys have none" in response.content.decode()


@pytest.mark.parametrize("granularity", ["day", "week", "month"])
def test_the_one_scan_report_equals_the_query_per_breakdown(spending, granularity):
    """On PostgreSQL the page uses one GROUPING SETS scan; it must agree with the plain queries."""
    period = periods.period_preset("last_30")

    total, breakdowns = reports.spend_report(period=period, granularity=granularity)

    assert total == reports.spend_total(period=period)
    expected = reports.spend_breakdowns(period=period, granularity=granularity)
    assert [(b.key, b.rows, b.total, b.note) for b in breakdowns] == [
        (b.key, b.rows, b.total, b.note) for b in expected
    ]


def test_a_long_breakdown_shows_its_largest_groups_and_opens_the_rest(team_admin_client, team_admin):
    from tasks.spend.views import PAGE_ROWS

    for i in range(PAGE_ROWS + 5):
        make_task(submitted_by=team_admin, tag=f"tag-{i:02d}", spend=Decimal("0.001") * (i + 1))

    page = team_admin_client.get(reverse("spend:page"))
    (by_tag,) = [b for b in page.context["breakdowns"] if b.key == "tag"]
    assert len(by_tag.rows) == PAGE_ROWS
    assert by_tag.rows[0].label == f"tag-{PAGE_ROWS + 4:02d}"  # the largest first
    assert by_tag.hidden_count == 5
    assert by_tag.hidden_spend == sum(Decimal("0.001") * (i + 1) for i in range(5))
    assert "5 more" in page.content.decode()

    everything = team_admin_client.get(reverse("spend:page") + by_tag.show_all_url.split("#")[0])
    (by_tag,) = [b for b in everything.context["breakdowns"] if b.key == "tag"]
    assert len(by_tag.rows) == PAGE_ROWS + 5
    exported = b"".join(team_admin_client.get(reverse("spend:export")).streaming_content).decode()
    assert exported.count("\ntag,") == PAGE_ROWS + 5


@pytest.mark.django_db(transaction=True)
def test_balance_of_a_dataforseo_account_comes_from_the_stand_in_over_http(live_server, client, team_admin):
    """The real client against the stand-in's `appendix/user_data`, Basic auth, over HTTP."""
    direct = Credential(
        name="Direct",
        kind=Credential.Kind.DATAFORSEO,
        login="sandbox@example.com",
        base_url=live_server.url + "/sandbox/v3",
    )
    direct.set_secret("sandbox-password")
    direct.save()
    client.force_login(team_admin)

    html = client.get(reverse("spend:balance"), headers={"HX-Request": "true"}).content.decode()

    assert "Direct" in html
    assert "$100.00" in html  # the stand-in's SANDBOX_BALANCE, nothing charged yet
    assert "sandbox-password" not in html


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_reversed_custom_dates_are_swapped_in_the_inputs_too(team_admin_client, htmx):
    query = {"period": "custom", "date_from": "2026-02-20", "date_to": "2026-02-01"}
    headers = {"HX-Request": "true"} if htmx else {}

    response = team_admin_client.get(reverse("spend:page"), query, headers=headers)

    html = response.content.decode()
    assert response.context["period"].start.isoformat() == "2026-02-01"
    assert re.search(r'name="date_from" value="2026-02-01"', html)
    assert re.search(r'name="date_to" value="2026-02-20"', html)


def test_spend_figures_show_four_decimals_with_the_exact_amount_on_hover(team_admin_client, team_admin):
    make_task(submitted_by=team_admin, status="completed", money_spent=Decimal("0.010508"))

    html = team_admin_client.get(reverse("spend:page")).content.decode()

    assert '<span class="money" title="$0.010708">$0.0107</span>' in html


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_dates_typed_while_the_period_says_this_month_show_those_dates(team_admin_client, htmx):
    """The period select shows "This month" when the page opens: someone who types a range in the From
    and To inputs and presses Show gets that range, not this month beside the dates they typed."""
    query = {"period": "this_month", "date_from": "2026-01-05", "date_to": "2026-01-20", "by": "day"}
    headers = {"HX-Request": "true"} if htmx else {}

    response = team_admin_client.get(reverse("spend:page"), query, headers=headers)

    html = response.content.decode()
    assert "5–20 Jan 2026" in html
    assert re.search(r'<option value="custom" selected>', html)


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_a_preset_chosen_on_a_custom_periods_page_shows_that_preset(team_admin_client, htmx):
    """The page of a custom period keeps its dates in the From and To inputs: choosing “Last 7 days” in
    the select and pressing Show must show the last 7 days, not the custom dates again."""
    custom = {"period": "custom", "date_from": "2026-01-05", "date_to": "2026-01-20", "by": "day"}
    html = team_admin_client.get(reverse("spend:page"), custom).content.decode()
    form = re.search(r'<form method="get" class="filters".*?</form>', html, re.S).group(0)
    sent = dict(re.findall(r'<input type="(?:hidden|date)" name="(\w+)" value="([^"]*)"', form))
    assert (sent["date_from"], sent["date_to"]) == ("2026-01-05", "2026-01-20")
    headers = {"HX-Request": "true"} if htmx else {}

    response = team_admin_client.get(
        reverse("spend:page"), {**sent, "period": "last_7", "by": "day"}, headers=headers
    )

    html = response.content.decode()
    assert response.context["period"] == periods.period_preset("last_7")
    assert re.search(r'<option value="last_7" selected>', html)
    assert 'name="date_from" value="2026-01-05"' not in html


def test_a_preset_with_its_own_dates_stays_the_preset(team_admin_client):
    """The "Over time by" links of a preset carry its dates: the preset (and its comparison) stays."""
    this_month = periods.period_preset("this_month")
    query = {"period": "this_month", **this_month.filters(), "by": "week"}

    response = team_admin_client.get(reverse("spend:page"), query)

    assert response.context["period"] == this_month


def test_the_chart_by_month_names_its_columns_by_month_not_by_their_first_day(team_admin_client):
    query = {"period": "custom", "date_from": "2026-09-15", "date_to": "2026-11-10", "by": "month"}

    chart = team_admin_client.get(reverse("spend:page"), query).context["over_time"].chart

    ticks = re.findall(r'text-anchor="middle">([^<]*)<', chart)
    assert ticks == ["Sep 2026", "Oct 2026", "Nov 2026"]


def test_a_custom_period_longer_than_three_years_says_where_it_starts(team_admin_client):
    query = {"period": "custom", "date_from": "2020-01-01", "date_to": "2026-12-07"}

    response = team_admin_client.get(reverse("spend:page"), query)

    html = response.content.decode()
    assert response.context["period"].start == date(2023, 12, 6)
    assert re.search(r'name="date_from" value="2023-12-06"', html)
    assert "A period is at most three years: this one starts on 6 Dec 2023." in html


def test_a_period_picked_in_place_brings_its_export_link_along(team_admin_client):
    """The report is swapped in place (htmx); the Export CSV button above it is not part of the report, so
    the fragment replaces it too: otherwise it would still export the period the page opened with."""
    response = team_admin_client.get(
        reverse("spend:page"), {"period": "last_month", "by": "week"}, headers={"HX-Request": "true"}
    )

    link = re.search(r'<a id="spend-export"[^>]*>', response.content.decode()).group(0)
    assert 'hx-swap-oob="true"' in link
    assert f'href="{reverse("spend:export")}?period=last_month&amp;by=week"' in link


def test_the_whole_page_has_one_export_link(team_admin_client):
    html = team_admin_client.get(reverse("spend:page"), {"period": "last_month"}).content.decode()

    assert html.count('id="spend-export"') == 1
    assert "hx-swap-oob" not in html


def test_a_period_picked_in_place_moves_the_preset_highlight_along(team_admin_client):
    """The preset tabs above the report say which period is shown, and keep the chosen "Over time by"."""
    response = team_admin_client.get(
        reverse("spend:page"), {"period": "last_month", "by": "week"}, headers={"HX-Request": "true"}
    )

    nav = re.search(r'<nav id="spend-presets".*?</nav>', response.content.decode(), re.S).group(0)
    assert 'hx-swap-oob="true"' in nav
    assert re.search(r'<a href="\?period=last_month&amp;by=week" class="active" aria-current="page">', nav)
    assert nav.count("aria-current") == 1


def test_the_three_year_note_is_not_shown_when_the_input_falls_back_to_this_month(team_admin_client):
    query = {"period": "custom", "date_from": "2020-01-01", "date_to": "2026-12-07", "by": "year"}

    html = team_admin_client.get(reverse("spend:page"), query).content.decode()

    assert "A period is at most three years" not in html


def test_each_provisional_reason_counts_the_tasks_its_link_lists(team_admin_client):
    """A queued task whose chunk a worker is sending reads "Sending" in the task list, and the list's
    status filter goes by that: the panel counts it under "being sent", not with the tasks waiting."""
    waiting = make_task(status="queued", spend=Decimal("0.0102"), spend_is_final=False)
    make_task_being_sent(spend=Decimal("0.0102"), spend_is_final=False)
    make_task(status="submitted", spend=Decimal("0.0102"), spend_is_final=False)

    panel = team_admin_client.get(reverse("spend:page")).context["provisional"]

    by_status = {group.status: group for group in panel.groups}
    assert {status: group.count for status, group in by_status.items()} == {
        "queued": 1,
        "sending": 1,
        "submitted": 1,
    }
    assert by_status["queued"].reason == "waiting to be sent"
    assert by_status["sending"].reason == "being sent"
    for group in panel.groups:
        listed = team_admin_client.get(group.url).context["page"]
        assert listed.count == group.count, group.status
    assert panel.count == 3 and panel.amount == Decimal("0.0306")
    queued = team_admin_client.get(by_status["queued"].url).context["page"]
    assert [task.pk for task in queued.tasks] == [waiting.pk]


@pytest.mark.parametrize("page", ["spend", "visibility"])
@pytest.mark.parametrize(
    "query, said",
    [
        ({"period": "custom", "date_from": "2026-02-30"}, "The date “2026-02-30” could not be read"),
        (
            {"period": "custom", "date_from": "not-a-date", "date_to": "31/12/2026"},
            "The dates “not-a-date” and “31/12/2026” could not be read",
        ),
        ({"period": "custom"}, "The period asked for could not be read"),
        ({"period": "last_month", "by": "fortnight"}, "The period asked for could not be read"),
    ],
)
def test_a_report_whose_dates_cannot_be_read_says_it_shows_this_month_instead(
    team_admin_client, page, query, said
):
    from tasks.models import BrandSet

    url = reverse("spend:page")
    if page == "visibility":
        url = reverse("visibility:set_page", args=[BrandSet.objects.create(name="Coffee").pk])

    html = team_admin_client.get(url, query).content.decode()

    report = html[html.index('<div aria-live="polite">') :]
    note = re.search(r'<p class="alert alert-warning" role="status">(.*?)</p>', report, re.S).group(1)
    assert note == f"{said}; showing this month."
    assert report.index(note) < report.index('<h2 class="period-title">')
    assert f'<h2 class="period-title">{periods.period_preset("this_month").label} ' in report
    for name in ("date_from", "date_to"):
        if name in query:
            assert f'name="{name}" value="{query[name]}"' in html  # the input is kept in its field


def test_a_report_whose_input_was_read_says_nothing_of_this_month(team_admin_client):
    html = team_admin_client.get(reverse("spend:page"), {"period": "custom", "date_from": "2026-02-01"})
    assert "could not be read" not in html.content.decode()
    assert "could not be read" not in team_admin_client.get(reverse("spend:page")).content.decode()


def test_a_models_figure_equals_the_list_its_link_opens_when_another_task_resolved_to_that_name(
    team_admin_client,
):
    """The list's `model` also finds the tasks the upstream answered with that name (resolved): the
    figure of the tasks that asked for "gpt-4.1-2025-04-14" must not open those that asked for "gpt-4.1"."""
    make_task(model_name="gpt-4.1", resolved_model_name="gpt-4.1-2025-04-14", tag="dated")
    make_task(model_name="gpt-4.1-2025-04-14", resolved_model_name="gpt-4.1-2025-04-14", tag="dated")

    page = team_admin_client.get(reverse("spend:page"))
    by_model = next(b for b in page.context["breakdowns"] if b.key == "model")
    tag_page = team_admin_client.get(reverse("history:tag_detail", kwargs={"tag": "dated"}))
    links = re.findall(r'href="(/tasks/\?tag=dated&amp;provider=[^"]+)"', tag_page.content.decode())

    figures = [(row.url, row.tasks) for row in by_model.rows]
    figures += [(url.replace("&amp;", "&"), 1) for url in links]
    assert len(figures) == 4
    for url, count in figures:
        listed = team_admin_client.get(url).context["page"]
        assert len(listed.tasks) == count, url


def test_a_group_with_some_spend_never_reads_as_a_zero_share(team_admin_client):
    """A tag with $0.00004 of $1.23 read "0%" in Share beside its "<$0.0001"; it reads "<1%"."""
    make_task(spend=Decimal("1.234567"), tag="big")
    make_task(spend=Decimal("0.00004"), tag="tiny")

    html = team_admin_client.get(reverse("spend:page")).content.decode()

    table = html[html.index('id="by-tag"') :]
    table = table[table.index("<table") :]
    tiny = table[table.index(">tiny<") :]
    assert re.search(r'<td class="num muted">([^<]*)</td>', tiny).group(1) == "&lt;1%"
