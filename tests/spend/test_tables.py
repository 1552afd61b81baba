"""The spend page's breakdown tables built in Python (tasks/spend/tables.py) are the HTML their template
wrote."""

from decimal import Decimal
from pathlib import Path

import pytest
from django.template import engines

from tasks.spend.reports import Breakdown, SpendRow
from tasks.spend.tables import breakdown_table

HOSTILE = "<b>\"x\"</b> & 'y'"

# templates/tasks/spend/breakdown_table.html as it was before issue 18.
TEMPLATE = (Path(__file__).parent / "breakdown_table_reference.html").read_text()


def _breakdown(*, hidden: int = 0) -> Breakdown:
    rows = [
        SpendRow(
            label=HOSTILE,
            spend=Decimal("12.345678"),
            tasks=1234,
            provisional=Decimal("0.5"),
            previous_spend=Decimal("10"),
            filters={"tag": HOSTILE},
        ),
        SpendRow(label="down", spend=Decimal("0.00001"), tasks=2, previous_spend=Decimal("3")),
        SpendRow(
            label="same",
            spend=Decimal("1"),
            tasks=0,
            previous_spend=Decimal("1"),
            filters={"provider": "claude"},
        ),
        SpendRow(label="new", spend=Decimal("2"), tasks=5, previous_spend=None),
    ]
    breakdown = Breakdown(key="tag", title="By tag", rows=rows, total=Decimal("15.345688"))
    if hidden:
        breakdown.hidden_count = hidden
        breakdown.hidden_spend = Decimal("0.25")
        breakdown.show_all_url = "?period=last_month&all=tag#by-tag"
    return breakdown


@pytest.mark.parametrize("timeline", [False, True])
@pytest.mark.parametrize("hidden", [0, 12])
def test_a_breakdown_table_is_the_html_its_template_wrote(timeline, hidden):
    breakdown = _breakdown(hidden=hidden)
    expected = engines["django"].from_string(TEMPLATE).render({"breakdown": breakdown, "timeline": timeline})
    assert breakdown_table(breakdown, timeline=timeline) == expected


def test_an_empty_total_and_no_rows_render_as_the_template_did():
    breakdown = Breakdown(key="model", title="By model", rows=[], total=Decimal("0"))
    expected = engines["django"].from_string(TEMPLATE).render({"breakdown": breakdown, "timeline": False})
    assert breakdown_table(breakdown) == expected
