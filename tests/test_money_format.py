"""The product's one way of showing money: 4 decimals with the exact figure on hover, never "$0.0000" for a
non-zero amount, 6 decimals where every digit matters."""

from decimal import Decimal

import pytest
from django.template import Context, Template

from tasks.spend.charts import bar_chart
from tasks.templatetags.spend_format import money, money_exact, money_text


@pytest.mark.parametrize(
    ("amount", "shown", "exact"),
    [
        ("0.0547", "$0.0547", "$0.054700"),
        ("0.010708", "$0.0107", "$0.010708"),
        ("0.00049", "$0.0005", "$0.000490"),
        ("0.000049", "<$0.0001", "$0.000049"),
        ("0", "$0.0000", "$0.000000"),
        ("1234.5", "$1,234.5000", "$1,234.500000"),
        ("-0.03", "-$0.0300", "-$0.030000"),
        ("-0.00001", "-<$0.0001", "-$0.000010"),
    ],
)
def test_an_amount_shows_four_decimals_with_the_exact_figure_on_hover(amount, shown, exact):
    assert (
        money(Decimal(amount)) == f'<span class="money" title="{exact}">{shown.replace("<", "&lt;")}</span>'
    )
    assert money_exact(Decimal(amount)) == exact
    assert money_text(Decimal(amount)) == shown


def test_a_tiny_amount_is_never_shown_as_zero():
    assert ">$0.0000<" not in money(Decimal("0.000049"))
    assert money_text(Decimal("0.00004")) == "<$0.0001"


@pytest.mark.parametrize(
    ("amount", "shown"),
    [("1.2", "+$1.2000"), ("-0.03", "-$0.0300"), ("0", "±$0.0000"), ("0.00002", "+<$0.0001")],
)
def test_a_change_is_signed(amount, shown):
    assert money_text(Decimal(amount), signed=True) == shown
    assert shown.replace("<", "&lt;") in money(Decimal(amount), "signed")


@pytest.mark.parametrize("value", [None, "", "abc", "NaN"])
def test_no_amount_is_a_dash(value):
    assert money(value) == "—"
    assert money_exact(value) == "—"


def test_every_template_library_renders_the_same_rule():
    rendered = Template(
        "{% load task_tags %}{{ a|money }}|{% load spend_format %}{{ a|money }}|{{ a|usd }}"
        "|{{ a|money_exact }}"
    ).render(Context({"a": Decimal("0.010708")}))
    first, second, former, exact = rendered.split("|")
    assert first == second == former == '<span class="money" title="$0.010708">$0.0107</span>'
    assert exact == "$0.010708"


def test_charts_label_amounts_by_the_same_rule():
    class Row:
        label, spend, url = "gpt-4.1", Decimal("1234.5"), None

    svg = bar_chart([Row()], title="Spend by model")
    assert "$1,234.5000" in svg
    assert "$1,234.50<" not in svg


def test_no_template_formats_money_its_own_way():
    from django.conf import settings

    own_ways = ("${{", "floatformat:4", "floatformat:6", "|usd", "|signed_usd")
    found = [
        f"{path.relative_to(settings.BASE_DIR)}: {way}"
        for path in (settings.BASE_DIR / "templates").rglob("*.html")
        for way in own_ways
        if way in path.read_text()
    ]
    assert not found, "use |money or |money_exact (tasks/templatetags/spend_format.py):\n" + "\n".join(found)
