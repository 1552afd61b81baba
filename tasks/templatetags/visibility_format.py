"""Visibility figures as text: ratios as percentages."""

from django import template

from tasks.visibility.charts import percent_text

register = template.Library()


@register.filter
def pct(value) -> str:
    return percent_text(value)


@register.filter
def points(value) -> str:
    """A change of a ratio in percentage points, signed."""
    if value is None:
        return ""
    return f"{value * 100:+.1f} pts"
