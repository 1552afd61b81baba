"""Visibility charts: the spend page's server-rendered SVG (tasks/spend/charts.py), in percent."""

from dataclasses import dataclass
from decimal import Decimal

from django.utils.safestring import SafeString, mark_safe

from tasks.spend import charts


def percent_text(value: Decimal | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


@dataclass
class _Bar:
    label: str
    value: Decimal
    url: str | None = None
    key: str = ""
    tasks: int | str = ""


def visibility_chart(report) -> dict[str, SafeString]:
    """Each brand's visibility (bars), and our first brand's visibility over time (columns)."""
    bars = [_Bar(line.brand.name, line.visibility or Decimal(0), line.url) for line in report.lines]
    result = {
        "brands": charts.bar_chart(
            bars, title="Visibility by brand", value=lambda r: r.value, fmt=percent_text
        )
        if report.answers
        else mark_safe(""),
        "over_time": mark_safe(""),
        "over_time_brand": None,
    }
    tracked = report.ours[0] if report.ours else (report.lines[0] if report.lines else None)
    if tracked is not None and report.answers:
        index = report.lines.index(tracked)
        columns = [
            _Bar(c.label, c.lines[index].visibility or Decimal(0), c.lines[index].url, c.key, c.answers)
            for c in report.over_time
        ]
        result["over_time"] = charts.column_chart(
            columns,
            title=f"Visibility of {tracked.brand.name} over time",
            value=lambda r: r.value,
            fmt=percent_text,
        )
        result["over_time_brand"] = tracked.brand.name
    return result
