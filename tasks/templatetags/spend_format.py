"""Money and change formatting for the spend, budget and people pages."""

from decimal import Decimal, InvalidOperation

from django import template

register = template.Library()


def usd(value) -> str:
    """Totals: "$1,234.56" from a dollar up, "$0.0102" below; "$0.00" for zero; "—" for nothing."""
    if value is None or value == "":
        return "—"
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return "—"
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if amount == 0:
        return "$0.00"
    if amount >= 1:
        return f"{sign}${amount:,.2f}"
    return f"{sign}${amount:,.4f}"


register.filter("usd", usd)


@register.filter
def signed_usd(value) -> str:
    """A change: "+$1.20", "-$0.0300", "±$0.00"."""
    if value is None:
        return "—"
    amount = Decimal(value)
    if amount == 0:
        return "±$0.00"
    return ("+" if amount > 0 else "-") + usd(abs(amount))


@register.filter
def signed_percent(ratio) -> str:
    """A relative change: Decimal("0.125") → "+12.5%"; None → "new"."""
    if ratio is None:
        return "—"
    percent = Decimal(ratio) * 100
    return f"{'+' if percent > 0 else ''}{percent:.1f}%"


@register.filter
def percent_of(value, total) -> str:
    """Share of a total as a whole percent, for bar widths and captions."""
    try:
        if not total:
            return "0%"
        return f"{Decimal(value) / Decimal(total) * 100:.0f}%"
    except (InvalidOperation, TypeError, ValueError):
        return "—"
