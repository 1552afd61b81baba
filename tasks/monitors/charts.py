"""A monitor's runs over time, server-rendered SVG (no script, no inline style, labels escaped): the cost of
each run (tasks/spend/charts.py's columns) and its tasks by status, stacked, each run linking to its batch.

Colours come from classes in static/css/monitors.css (on app.css's light/dark variables).
"""

from dataclasses import dataclass
from decimal import Decimal

from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from tasks.models import MonitorRun
from tasks.monitors.cadence import CadenceError, zone_of
from tasks.spend.charts import chart_role, column_chart

CHART_RUNS = 30
# Stacked from the bottom: what a run's tasks became, then what is not final yet.
SEGMENTS = [("completed", "completed"), ("failed", "failed"), ("unknown", "unknown"), ("pending", "pending")]


@dataclass
class RunPoint:
    label: str
    key: str
    spend: Decimal
    tasks: int
    url: str | None
    state: str
    counts: dict


def _n(value: float) -> str:
    return f"{value:.1f}"


def run_points(runs: list[MonitorRun], *, time_zone: str | None = None) -> list[RunPoint]:
    """The newest CHART_RUNS runs, oldest first (time runs left to right), labelled in `time_zone` (the
    monitor's, as its cadence and runs table read; the site's when not given)."""
    zone = _zone(time_zone)
    points = []
    for run in sorted(runs, key=lambda r: r.slot)[-CHART_RUNS:]:
        local = timezone.localtime(run.slot, zone)
        pending = max(run.task_count - run.completed_count - run.failed_count - run.unknown_count, 0)
        if run.state != MonitorRun.State.SENT:
            pending = 0
        points.append(
            RunPoint(
                label=f"{local:%Y-%m-%d %H:%M} · {run.get_kind_display()} · {run.get_state_display()}",
                key=f"{local:%-d %b}",
                spend=run.cost if run.batch_id else Decimal("0"),
                tasks=run.task_count,
                url=reverse("prompt_templates:batch_detail", args=[run.batch_id]) if run.batch_id else None,
                state=run.state,
                counts={
                    "completed": run.completed_count,
                    "failed": run.failed_count,
                    "unknown": run.unknown_count,
                    "pending": pending,
                },
            )
        )
    return points


def cost_chart(points: list[RunPoint]) -> SafeString:
    return column_chart(points, title="Cost per run")


def status_chart(points: list[RunPoint]) -> SafeString:
    """Per run, its tasks by status stacked; a run that sent nothing (skipped, failed before sending) is a
    marker on the axis, titled with its state."""
    if not points:
        return mark_safe("")
    width, height, left, bottom, top_pad = 640, 200, 64, 28, 12
    plot_w, plot_h = width - left - 8, height - bottom - top_pad
    top = max((sum(p.counts.values()) for p in points), default=0) or 1
    step = plot_w / len(points)
    column = min(max(step * 0.75, 1.0), 48.0)  # a few runs are not slabs
    base = top_pad + plot_h
    parts = [
        format_html(
            '<line class="chart-axis" x1="{}" y1="{}" x2="{}" y2="{}"></line>'
            '<text class="chart-tick" x="{}" y="{}" text-anchor="end">{}</text>'
            '<text class="chart-tick" x="{}" y="{}" text-anchor="end">0</text>',
            left,
            base,
            width - 8,
            base,
            left - 6,
            top_pad + 4,
            f"{top} task{'s' if top != 1 else ''}",
            left - 6,
            base,
        )
    ]
    label_every = max(1, len(points) // 8)
    for index, point in enumerate(points):
        x = left + index * step + (step - column) / 2
        summary = ", ".join(f"{point.counts[name]} {label}" for name, label in SEGMENTS if point.counts[name])
        shapes = [format_html("<title>{}: {}</title>", point.label, summary or "no task sent")]
        y = base
        for name, _label in SEGMENTS:
            count = point.counts[name]
            if not count:
                continue
            h = max(count / top * plot_h, 1.0)
            y -= h
            shapes.append(
                format_html(
                    '<rect class="run-segment run-segment-{}" x="{}" y="{}" width="{}" height="{}"></rect>',
                    name,
                    _n(x),
                    _n(y),
                    _n(column),
                    _n(h),
                )
            )
        if not summary:  # skipped or failed before sending
            shapes.append(
                format_html(
                    '<rect class="run-segment run-marker-{}" x="{}" y="{}" width="{}" height="4"></rect>',
                    point.state,
                    _n(x),
                    _n(base - 4),
                    _n(column),
                )
            )
        group = format_html_join("", "{}", ((shape,) for shape in shapes))
        if point.url:
            parts.append(format_html('<a href="{}" class="chart-link">{}</a>', point.url, group))
        else:
            parts.append(format_html("<g>{}</g>", group))
        if index % label_every == 0:
            parts.append(
                format_html(
                    '<text class="chart-tick" x="{}" y="{}" text-anchor="middle">{}</text>',
                    _n(x + column / 2),
                    height - 8,
                    point.key,
                )
            )
    return format_html(
        '<svg class="chart chart-columns" viewBox="0 0 {} {}" role="{}" aria-label="{}" '
        'preserveAspectRatio="xMinYMin meet">{}</svg>',
        width,
        height,
        chart_role(points),
        "Tasks per run by status",
        format_html_join("", "{}", ((part,) for part in parts)),
    )


def _zone(time_zone: str | None):
    if not time_zone:
        return None
    try:
        return zone_of(time_zone)
    except CadenceError:
        return None


def runs_charts(runs: list[MonitorRun], *, time_zone: str | None = None) -> dict | None:
    points = run_points(runs, time_zone=time_zone)
    if not points:
        return None
    return {"cost": cost_chart(points), "status": status_chart(points), "count": len(points)}
