"""Money and change formatting: the product's one rule for showing amounts, used by every template.

- `money`: tables, totals and figures in running text, to 4 decimals with thousands separators
  ("$0.0547", "$1,234.5000"), the exact amount on hover (a title attribute: "$0.054712"). A non-zero amount
  too small for 4 decimals never shows as "$0.0000": it reads "<$0.0001". `{{ x|money:"signed" }}` shows a
  change ("+$1.2000", "-$0.0300", "±$0.0000").
- `money_exact`: the exact amount, 6 decimals ("$0.010708"), where every digit matters (a task's cost
  breakdown) and in attributes.

Both give "—" for no amount. Exports are files, not pages: they keep full precision in their own format.
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template
from django.utils.html import format_html

register = template.Library()

SHOWN = Decimal("0.0001")
EXACT = Decimal("0.000001")


def _amount(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return None
    return amount if amount.is_finite() else None


def _dollars(amount: Decimal, places: Decimal) -> str:
    """'$1,234.5600' for places 0.0001: sign before the dollar sign, thousands separated."""
    rounded = abs(amount).quantize(places)
    sign = "-" if amount < 0 and rounded else ""
    return f"{sign}${rounded:,}"


def money_text(value, signed: bool = False) -> str:
    """The shown text alone (no markup): for SVG labels and other places a title cannot go."""
    amount = _amount(value)
    if amount is None:
        return "—"
    sign = ""
    if signed:
        sign = "+" if amount > 0 else "-" if amount < 0 else "±"
        amount = abs(amount)
    if amount and not abs(amount).quantize(SHOWN):
        return f"{sign}{'-' if amount < 0 else ''}<$0.0001"
    return sign + _dollars(amount, SHOWN)


@register.filter
def money_exact(value) -> str:
    """The exact amount to 6 decimals: Decimal("0.0107082") → "$0.010708"; None → "—"."""
    amount = _amount(value)
    if amount is None:
        return "—"
    return _dollars(amount, EXACT)


@register.filter
def money(value, style: str = ""):
    """An amount to 4 decimals with its exact figure on hover; `money:"signed"` for a change."""
    amount = _amount(value)
    if amount is None:
        return "—"
    shown = money_text(amount, signed=style == "signed")
    exact = money_exact(amount)
    if style == "signed" and amount > 0:
        exact = "+" + exact
    return format_html('<span class="money" title="{}">{}</span>', exact, shown)


# The former name, kept so a template or test written against it renders by the same rule.
usd = money
register.filter("usd", usd)


@register.filter
def signed_usd(value):
    return money(value, "signed")


@register.filter
def signed_percent(ratio) -> str:
    """A relative change: Decimal("0.125") → "+12.5%"; None → "new"."""
    if ratio is None:
        return "—"
    percent = Decimal(ratio) * 100
    return f"{'+' if percent > 0 else ''}{percent:.1f}%"


def ratio_percent(ratio: Decimal, rounding: str = ROUND_HALF_UP) -> str:
    """A ratio as a percent to one decimal, without a trailing ".0": Decimal("0.825") → "82.5%" (a
    budget's threshold, its use: the budgets page and the budget alerts read the same)."""
    text = f"{(Decimal(ratio) * 100).quantize(Decimal('0.1'), rounding=rounding)}"
    return f"{text.removesuffix('.0')}%"


@register.filter
def percent_of(value, total) -> str:
    """Share of a total as a whole percent, for bar widths and captions; a share too small for a whole
    percent reads "<1%", not "0%" beside the amount it is (as money reads "<$0.0001")."""
    try:
        if not total:
            return "0%"
        share = Decimal(value) / Decimal(total) * 100
        if share and abs(share) < Decimal("0.5"):
            return "<1%"
        return f"{share:.0f}%"
    except (InvalidOperation, TypeError, ValueError):
        return "—"


@register.filter
def budget_name(budget) -> str:
    """`Budget.sentence_name`, for the middle of a sentence."""
    return budget.sentence_name
