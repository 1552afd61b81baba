"""The visibility CSV written as cells (tasks/visibility/csv.py) is what its former writer gave through
`cell`: every figure from BrandLine's properties, every value guarded against formulas."""

import pytest

from tasks.csv_export import cell, money
from tasks.models import Brand
from tasks.visibility.csv import report_rows
from tasks.visibility.selectors import AnswerScope, visibility_report
from tests.visibility.conftest import HOSTILE_TAG
from tests.visibility.test_tables import _period

pytestmark = pytest.mark.django_db


def _ratio(value) -> str:
    return "" if value is None else f"{value:.6f}"


def _line_row(section: str, group: str, line, *, show_cost: bool) -> list:
    sums = line.sums
    return [
        section,
        group,
        line.brand.name,
        "yes" if line.brand.is_ours else "no",
        line.answers,
        sums["mentioned"],
        _ratio(line.visibility),
        sums["mentions"],
        _ratio(line.share_of_voice),
        "" if line.average_position is None else f"{line.average_position}",
        sums["first_paragraph"],
        sums["cited"],
        sums["citations"],
        _ratio(line.citation_share),
        money(sums["spend"]) if show_cost else "",
        _ratio(line.previous.visibility) if line.previous is not None else "",
    ]


def _former_rows(report, *, show_cost: bool):
    """tasks/visibility/csv.py's rows before they were written as cells."""
    for line in report.lines:
        yield _line_row("total", report.period.label, line, show_cost=show_cost)
    for column in report.over_time:
        for line in column.lines:
            yield _line_row(report.granularity, column.key, line, show_cost=show_cost)
    for column in report.by_model:
        for line in column.lines:
            yield _line_row("model", column.key, line, show_cost=show_cost)
    for group in report.citation_groups:
        row = ["citations", group.key, "", "", report.answers, "", "", "", "", "", "", "", group.citations]
        yield [*row, _ratio(group.share), "", ""]


@pytest.mark.parametrize("show_cost", [True, False], ids=["cost", "no-cost"])
@pytest.mark.parametrize("granularity", ["day", "week"])
@pytest.mark.parametrize("scope", [AnswerScope(), AnswerScope(tags=(HOSTILE_TAG,))], ids=["set", "tag"])
def test_the_csv_cells_are_the_former_rows_through_cell(hostile_set, scope, granularity, show_cost):
    Brand.objects.filter(brand_set=hostile_set, name="It's & <i>").update(name="=HYPERLINK(\"x\") & 'y'")
    report = visibility_report(
        brand_set=hostile_set, scope=scope, period=_period(20), granularity=granularity
    )

    rows = list(report_rows(report, show_cost=show_cost))

    assert rows == [[cell(value) for value in row] for row in _former_rows(report, show_cost=show_cost)]
    assert any(row[2] == "'=HYPERLINK(\"x\") & 'y'" for row in rows)
    assert len(rows) == 4 * (1 + len(report.over_time) + len(report.by_model)) + 3
