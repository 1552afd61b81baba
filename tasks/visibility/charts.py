"""Visibility charts: the spend page's server-rendered SVG (tasks/spend/charts.py), in percent."""

from dataclasses import dataclass
from decimal import Decimal
from html import escape

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
        result["over_time"] = over_time_chart(columns, title=f"Visibility of {tracked.brand.name} over time")
        result["over_time_brand"] = tracked.brand.name
    return result


def _n(value: float) -> str:
    return f"{value:.1f}"


def over_time_chart(columns: list[_Bar], *, title: str) -> SafeString:
    """tasks/spend/charts.column_chart's SVG in percent, written with f-strings: 90 days by day are 90
    columns, each several format_html calls there (tests/visibility/test_tables.py compares the two).
    Its ticks read in percent (0.0% at the bottom), as the spend chart's read in money."""
    if not columns:
        return mark_safe("")
    width, height, left, bottom, top_pad = 640, 220, 64, 28, 12
    plot_w, plot_h = width - left - 8, height - bottom - top_pad
    base = top_pad + plot_h
    top = max(column.value for column in columns)
    step = plot_w / len(columns)
    bar = max(step * 0.75, 1.0)
    label_every = max(1, len(columns) // 8)
    parts = [
        f'<line class="chart-axis" x1="{left}" y1="{base}" x2="{width - 8}" y2="{base}"></line>'
        f'<line class="chart-grid" x1="{left}" y1="{top_pad}" x2="{width - 8}" y2="{top_pad}"></line>'
        f'<text class="chart-tick" x="{left - 6}" y="{top_pad + 4}" text-anchor="end">'
        f"{percent_text(top)}</text>"
        f'<text class="chart-tick" x="{left - 6}" y="{base}" text-anchor="end">'
        f"{percent_text(Decimal(0))}</text>"
    ]
    for index, column in enumerate(columns):
        amount = column.value
        h = float(amount / top) * plot_h if top > 0 else 0.0
        if amount > 0:
            h = max(h, 1.0)
        x = left + index * step + (step - bar) / 2
        rect = (
            f"<title>{escape(str(column.label))}: "
            f"{escape(charts.column_chart_reading(percent_text(amount), column.tasks))}"
            f'</title><rect class="chart-bar" x="{_n(x)}" y="{_n(base - h)}" width="{_n(bar)}" '
            f'height="{_n(h)}"></rect>'
        )
        parts.append(f'<a href="{escape(column.url)}" class="chart-link">{rect}</a>' if column.url else rect)
        if index % label_every == 0:
            parts.append(
                f'<text class="chart-tick" x="{_n(x + bar / 2)}" y="{height - 8}" text-anchor="middle">'
                f"{escape(charts.short_label(column.key or str(column.label)))}</text>"
            )
    role = charts.chart_role(columns)
    return SafeString(
        f'<svg class="chart chart-columns" viewBox="0 0 {width} {height}" role="{role}" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMinYMin meet">{"".join(parts)}</svg>'
    )
