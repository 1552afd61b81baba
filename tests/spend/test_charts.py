"""The SVG charts' role: an image, unless its bars are links (an image's content is hidden from a screen
reader, so its links would be reachable by keyboard only)."""

import re
from dataclasses import dataclass
from decimal import Decimal

from tasks.spend.charts import bar_chart, column_chart
from tasks.visibility.charts import _Bar, over_time_chart


@dataclass
class Row:
    label: str
    spend: Decimal
    url: str | None = None
    key: str = ""
    tasks: int = 1


def test_a_chart_of_links_is_a_group_of_them_and_a_chart_without_is_an_image():
    linked = [Row("gpt-4.1", Decimal("1"), "/tasks/?model=gpt-4.1"), Row("other", Decimal("2"))]
    plain = [Row("gpt-4.1", Decimal("1")), Row("other", Decimal("2"))]

    for chart in (bar_chart, column_chart):
        assert 'role="group" aria-label="Spend"' in chart(linked, title="Spend")
        assert 'role="img" aria-label="Spend"' in chart(plain, title="Spend")
        assert "<a " not in chart(plain, title="Spend")


def test_a_columns_tooltip_counts_one_task_in_the_singular():
    chart = column_chart(
        [Row("Mon 7 Dec 2026", Decimal("0.01")), Row("Tue 8 Dec 2026", Decimal("0.02"), tasks=2)],
        title="Spend",
    )

    assert "<title>Mon 7 Dec 2026: $0.0100 (1 task)</title>" in chart
    assert "<title>Tue 8 Dec 2026: $0.0200 (2 tasks)</title>" in chart


def test_a_column_of_no_task_reads_no_tasks_not_an_amount():
    """A visibility day nothing was asked on read “0.0% (0 tasks)”: a share measured as nothing, though
    nothing was measured. The spend chart's empty days read the same way."""
    visibility = over_time_chart(
        [
            _Bar("Mon 7 Dec 2026", Decimal(0), None, "", 0),
            _Bar("Tue 8 Dec 2026", Decimal("0.5"), None, "", 2),
        ],
        title="Visibility",
    )
    spend = column_chart([Row("Mon 7 Dec 2026", Decimal(0), tasks=0)], title="Spend")

    assert "<title>Mon 7 Dec 2026: no tasks</title>" in visibility
    assert "<title>Tue 8 Dec 2026: 50.0% (2 tasks)</title>" in visibility
    assert "<title>Mon 7 Dec 2026: no tasks</title>" in spend


def test_the_axis_of_a_columns_chart_shows_money_the_products_one_way_at_both_ends():
    chart = column_chart([Row("Mon 7 Dec 2026", Decimal("0.0048"))], title="Spend")

    ticks = re.findall(r'<text class="chart-tick" x="58" y="[^"]*" text-anchor="end">([^<]*)</text>', chart)
    assert ticks == ["$0.0048", "$0.0000"]  # not "$0" under "$0.0048"
