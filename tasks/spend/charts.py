"""Server-side SVG charts: no script, no inline style, labels escaped; bars link to the tasks behind them.

Colours and fonts come from classes styled in static/css/spend.css (on app.css's light/dark variables);
only geometry is in attributes, so a chart follows the page's colour scheme.
"""

from collections.abc import Callable, Sequence
from decimal import Decimal

from django.template.defaultfilters import pluralize
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from tasks.templatetags.spend_format import money_text

ZERO = Decimal("0")


def _money(value: Decimal) -> str:
    return money_text(value)  # the product's one money rule; SVG text has no hover title


def _ratio(value: Decimal, top: Decimal) -> float:
    return float(value / top) if top > 0 else 0.0


def _n(value: float) -> str:
    return f"{value:.1f}"


def chart_role(rows: Sequence) -> str:
    """An SVG chart is an image, unless its bars are links: then it is a group of them. An image's content is
    presentational, so a screen reader would never reach the links a keyboard tabs to (WCAG 4.1.2, axe's
    nested-interactive)."""
    return "group" if any(getattr(row, "url", None) for row in rows) else "img"


def _truncate(label: str, length: int) -> str:
    return label if len(label) <= length else label[: length - 1] + "…"


def bar_chart(
    rows: Sequence,
    *,
    title: str,
    value: Callable = lambda row: row.spend,
    limit: int = 12,
    fmt: Callable[[Decimal], str] = _money,
) -> SafeString:
    """Horizontal bars, one per row (its `label`, `value(row)` and optional `url`), largest first."""
    rows = list(rows)[:limit]
    if not rows:
        return mark_safe("")
    bar_height, gap, label_width, value_width, width = 22, 8, 170, 90, 640
    plot = width - label_width - value_width
    top = max((value(row) for row in rows), default=ZERO)
    height = len(rows) * (bar_height + gap)
    parts = []
    for index, row in enumerate(rows):
        y = index * (bar_height + gap)
        amount = value(row)
        bar = max(_ratio(amount, top) * plot, 1.0 if amount > 0 else 0.0)
        text = format_html(
            '<text class="chart-label" x="{}" y="{}" text-anchor="end">{}</text>'
            '<rect class="chart-bar" x="{}" y="{}" width="{}" height="{}" rx="3"></rect>'
            '<text class="chart-value" x="{}" y="{}">{}</text>',
            label_width - 8,
            _n(y + bar_height * 0.7),
            _truncate(str(row.label), 24),
            label_width,
            y,
            _n(bar),
            bar_height,
            _n(label_width + bar + 6),
            _n(y + bar_height * 0.7),
            fmt(amount),
        )
        tooltip = format_html("<title>{}: {}</title>", row.label, fmt(amount))
        url = getattr(row, "url", None)
        if url:
            parts.append(format_html('<a href="{}" class="chart-link">{}{}</a>', url, tooltip, text))
        else:
            parts.append(format_html("<g>{}{}</g>", tooltip, text))
    return format_html(
        '<svg class="chart chart-bars" viewBox="0 0 {} {}" role="{}" aria-label="{}" '
        'preserveAspectRatio="xMinYMin meet">{}</svg>',
        width,
        height,
        chart_role(rows),
        title,
        mark_safe("".join(parts)),  # noqa: S308 - every part was built with format_html
    )


def column_chart_reading(amount_text: str, count) -> str:
    """A column's tooltip after its label: the amount and its tasks; a column of no task reads "no tasks",
    not an amount ("0.0%" visible on a day nothing was asked)."""
    if count is None:
        return amount_text
    if count == 0:
        return "no tasks"
    return f"{amount_text} ({count} task{pluralize(count)})"


def column_chart(
    rows: Sequence,
    *,
    title: str,
    value: Callable = lambda row: row.spend,
    fmt: Callable[[Decimal], str] = _money,
    tick: Callable | None = None,
) -> SafeString:
    """Vertical columns over time, in the given order, with a few axis labels and a top gridline.

    `tick(row)` is a column's axis label; by default its day ('3 Nov') from its `key`."""
    tick = tick or (lambda row: short_label(str(getattr(row, "key", "") or row.label)))
    rows = list(rows)
    if not rows:
        return mark_safe("")
    width, height, left, bottom, top_pad = 640, 220, 64, 28, 12
    plot_w, plot_h = width - left - 8, height - bottom - top_pad
    top = max((value(row) for row in rows), default=ZERO)
    step = plot_w / len(rows)
    column = max(step * 0.75, 1.0)
    label_every = max(1, len(rows) // 8)
    parts = [
        format_html(
            '<line class="chart-axis" x1="{}" y1="{}" x2="{}" y2="{}"></line>'
            '<line class="chart-grid" x1="{}" y1="{}" x2="{}" y2="{}"></line>'
            '<text class="chart-tick" x="{}" y="{}" text-anchor="end">{}</text>'
            '<text class="chart-tick" x="{}" y="{}" text-anchor="end">{}</text>',
            left,
            top_pad + plot_h,
            width - 8,
            top_pad + plot_h,
            left,
            top_pad,
            width - 8,
            top_pad,
            left - 6,
            top_pad + 4,
            fmt(top),
            left - 6,
            top_pad + plot_h,
            fmt(ZERO),  # the same format as the top: "$0.0000" under "$0.0048"
        )
    ]
    for index, row in enumerate(rows):
        amount = value(row)
        h = _ratio(amount, top) * plot_h
        if amount > 0:
            h = max(h, 1.0)
        x = left + index * step + (step - column) / 2
        count = getattr(row, "tasks", None)
        rect = format_html(
            '<title>{}: {}</title><rect class="chart-bar" x="{}" y="{}" width="{}" height="{}"></rect>',
            row.label,
            column_chart_reading(fmt(amount), count),
            _n(x),
            _n(top_pad + plot_h - h),
            _n(column),
            _n(h),
        )
        url = getattr(row, "url", None)
        parts.append(format_html('<a href="{}" class="chart-link">{}</a>', url, rect) if url else rect)
        if index % label_every == 0:
            parts.append(
                format_html(
                    '<text class="chart-tick" x="{}" y="{}" text-anchor="middle">{}</text>',
                    _n(x + column / 2),
                    height - 8,
                    tick(row),
                )
            )
    return format_html(
        '<svg class="chart chart-columns" viewBox="0 0 {} {}" role="{}" aria-label="{}" '
        'preserveAspectRatio="xMinYMin meet">{}</svg>',
        width,
        height,
        chart_role(rows),
        title,
        format_html_join("", "{}", ((part,) for part in parts)),
    )


def short_label(key: str) -> str:
    """'2026-11-03' -> '3 Nov'; anything else unchanged (the spend and visibility charts' axis)."""
    from datetime import date

    try:
        day = date.fromisoformat(key)
    except ValueError:
        return key
    return f"{day:%-d %b}"
