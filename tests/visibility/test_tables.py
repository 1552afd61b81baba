"""The visibility report's tables built in Python (tasks/visibility/tables.py) are the HTML their template
wrote, for hostile names and tags, empty periods and a previous period with answers; its over-time chart
is the spend page's SVG."""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.template import engines
from django.utils import timezone

from tasks.models import BrandSet, BrandSetTag
from tasks.spend import charts
from tasks.spend.periods import Period
from tasks.visibility.charts import _Bar, over_time_chart, percent_text, visibility_chart
from tasks.visibility.mentions import mentions_recompute
from tasks.visibility.selectors import AnswerScope, visibility_report
from tasks.visibility.tables import _percent, report_tables
from tests.factories import make_task
from tests.visibility.conftest import HOSTILE_TAG

pytestmark = pytest.mark.django_db

# The three tables of templates/tasks/visibility/report.html as they were before they were built in Python.
TEMPLATE = (Path(__file__).parent / "report_tables_reference.html").read_text()


def _reference(report, show_cost: bool) -> str:
    return engines["django"].from_string(TEMPLATE).render({"report": report, "show_cost": show_cost})


def _built(report, show_cost: bool) -> str:
    tables = report_tables(report, show_cost=show_cost)
    return "".join(
        f"<!-- {name} -->\n{tables[key]}\n"
        for name, key in (("brands", "brands"), ("over-time", "over_time"), ("by-model", "by_model"))
    )


def _period(days: int, *, ago: int = 0) -> Period:
    end = timezone.localdate() - timedelta(days=ago)
    return Period(start=end - timedelta(days=days - 1), end=end)


@pytest.mark.parametrize("show_cost", [True, False], ids=["cost", "no-cost"])
@pytest.mark.parametrize("granularity", ["day", "week", "month"])
@pytest.mark.parametrize(
    "scope", [AnswerScope(), AnswerScope(tags=(HOSTILE_TAG,)), AnswerScope(tags=(HOSTILE_TAG, "plain"))]
)
def test_the_report_tables_are_the_html_their_template_wrote(hostile_set, scope, granularity, show_cost):
    # 20 days now, the 20 before them as the previous period: both have answers and empty days
    period = _period(20)
    report = visibility_report(brand_set=hostile_set, scope=scope, period=period, granularity=granularity)
    assert report.answers and report.previous_answers
    assert len(report.by_model) == 2

    built = _built(report, show_cost)

    assert built == _reference(report, show_cost)
    assert "&lt;b&gt;Acme&lt;/b&gt; &amp; &quot;Co&quot;" in built
    assert "Glöbex 100% / #1" in built and "空の会社" in built


def test_an_empty_period_and_an_empty_previous_one_render_as_the_template_did(hostile_set):
    report = visibility_report(brand_set=hostile_set, scope=AnswerScope(), period=_period(30, ago=200))
    assert report.answers == 0 and report.previous_answers == 0 and report.by_model == []

    assert _built(report, True) == _reference(report, True)


def test_a_report_without_links_renders_as_the_template_did(hostile_set):
    """A queryset scope (no answers page to link to): the template wrote "None" for the links."""
    from tasks.models import Task

    scope = AnswerScope(tasks=Task.objects.filter(provider="claude"))
    report = visibility_report(brand_set=hostile_set, scope=scope, period=_period(20), granularity="week")
    assert report.answers

    assert _built(report, True) == _reference(report, True)


def test_a_set_without_brands_renders_as_the_template_did(db):
    brand_set = BrandSet.objects.create(name="empty")
    BrandSetTag.objects.create(brand_set=brand_set, tag="plain")
    make_task(tag="plain", answer_text="Acme", created_at=timezone.now())
    mentions_recompute(brand_set_id=brand_set.pk)
    report = visibility_report(brand_set=brand_set, scope=AnswerScope(), period=_period(3))

    assert _built(report, False) == _reference(report, False)


@pytest.mark.parametrize("granularity", ["day", "week"])
def test_the_over_time_chart_is_the_spend_charts_svg_with_a_percent_zero_tick(hostile_set, granularity):
    report = visibility_report(
        brand_set=hostile_set,
        scope=AnswerScope(tags=(HOSTILE_TAG,)),
        period=_period(40),
        granularity=granularity,
    )
    tracked = report.lines.index(report.ours[0])
    columns = [
        _Bar(c.label, c.lines[tracked].visibility or Decimal(0), c.lines[tracked].url, c.key, c.answers)
        for c in report.over_time
    ]
    columns.append(_Bar('<b>"odd" & label</b>', Decimal("0.5"), "/x?a=1&b=<2>", "not-a-date", "<3>"))
    title = f"Visibility of {report.ours[0].brand.name} over time"

    chart = visibility_chart(report)["over_time"]
    built = over_time_chart(columns, title=title)

    spend_svg = charts.column_chart(columns, title=title, value=lambda r: r.value, fmt=percent_text)
    assert built == spend_svg
    assert chart == over_time_chart(columns[:-1], title=title)
    assert chart.count('class="chart-link"') == len(report.over_time)


def test_an_all_zero_over_time_chart_is_the_spend_charts_svg(hostile_set):
    columns = [_Bar(f"day {i}", Decimal(0), None, "", 0) for i in range(3)]
    spend_svg = charts.column_chart(columns, title="t", value=lambda r: r.value, fmt=percent_text)
    assert over_time_chart(columns, title="t") == spend_svg


def test_a_cells_percent_in_integers_is_the_decimal_ratios_pct():
    for whole in range(0, 401):
        for part in range(0, whole + 1):
            ratio = Decimal(part) / Decimal(whole) if whole else None
            assert _percent(part, whole) == percent_text(ratio), (part, whole)
    for part, whole in [(1, 8), (1, 16), (5, 16), (123_456_789, 987_654_321), (2_000_001, 4_000_000)]:
        assert _percent(part, whole) == percent_text(Decimal(part) / Decimal(whole)), (part, whole)
