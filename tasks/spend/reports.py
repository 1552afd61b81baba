"""Spend selectors: periods, totals and breakdowns.

Every figure sums `Task.spend` (the final cost where known, the charge at post otherwise, the
reservation while sending, zero when refused), over tasks *created* in the period, in the site's time
zone. Each figure carries the task-list filters that select exactly the tasks behind it.

Days up to the spend rollup's watermark (tasks.spend_rollup: settled days, whose spend can no longer
change) are read from their pre-aggregated `SpendDay` rows, later days from the tasks; every figure is
the sum of both parts, so it stays equal to the sum of `Task.spend` behind it.
"""

import calendar
from collections import defaultdict
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import cached_property

from django.db import connection

from tasks.models import Provider
from tasks.spend.figures import (
    _add,
    _add_live,
    _add_live_grouping_sets,
    _add_rolled,
    _Figures,
    _figures,
    _group_names,
    _planner_settings,
    _Sources,
    _sources,
)
from tasks.spend.periods import DIMENSIONS, ZERO, Period, _money, task_list_url


@dataclass
class SpendTotal:
    period: Period
    previous_period: Period
    spend: Decimal
    provisional: Decimal
    tasks: int
    provisional_tasks: int
    previous_spend: Decimal
    previous_tasks: int

    @property
    def change(self) -> Decimal:
        return self.spend - self.previous_spend

    @property
    def change_ratio(self) -> Decimal | None:
        """Relative change against the previous period, None when that was zero."""
        if not self.previous_spend:
            return None
        return self.change / self.previous_spend

    @property
    def url(self) -> str | None:
        return task_list_url(self.period.filters())

    @property
    def previous_url(self) -> str | None:
        return task_list_url(self.previous_period.filters())


def spend_total(*, period: Period) -> SpendTotal:
    """The period's spend, how much of it is provisional, and the previous period's."""
    src, figures = _figures(period, totals=True)
    return _total(src, figures.totals)


def spend_total_and_person(*, period: Period, person_id) -> tuple[SpendTotal, Decimal]:
    """`spend_total` and one person's spend in the period, from the same queries (the home page)."""
    src, figures = _figures(period, totals=True, dimensions=["person"])
    mine = figures.groups["person"].get(person_id, {}).get("amount")
    return _total(src, figures.totals), _money(mine)


def _total(src: _Sources, totals: dict) -> SpendTotal:
    return SpendTotal(
        period=src.period,
        previous_period=src.previous,
        spend=_money(totals.get("amount")),
        provisional=_money(totals.get("provisional_amount")),
        tasks=totals.get("count") or 0,
        provisional_tasks=totals.get("provisional_count") or 0,
        previous_spend=_money(totals.get("previous_amount")),
        previous_tasks=totals.get("previous_count") or 0,
    )


@dataclass
class SpendRow:
    label: str
    spend: Decimal
    tasks: int
    provisional: Decimal = ZERO
    previous_spend: Decimal | None = None
    filters: dict = field(default_factory=dict)
    key: str = ""

    @cached_property  # the page asks for it several times per row; reverse() and urlencode add up
    def url(self) -> str | None:
        return task_list_url(self.filters) if self.filters else None

    @property
    def change(self) -> Decimal | None:
        return None if self.previous_spend is None else self.spend - self.previous_spend


@dataclass
class Breakdown:
    key: str
    title: str
    rows: list[SpendRow]
    total: Decimal
    filter_name: str = ""
    note: str = ""

    @property
    def max_spend(self) -> Decimal:
        return max((row.spend for row in self.rows), default=ZERO)


PROVIDER_LABELS = dict(Provider.choices)


def spend_by(*, period: Period, dimension: str) -> Breakdown:
    """Spend per person, provider, model, credential, tag or template in `period`, with the previous
    period's spend beside each group."""
    _, figures = _figures(period, dimensions=[dimension])
    return _groups_breakdown(dimension, period, figures.groups[dimension], _group_names(figures.groups))


def _groups_breakdown(key: str, period: Period, groups: dict, names: dict) -> Breakdown:
    """A breakdown from {group: figures} (amount, count, provisional_amount, previous_amount), each
    group named from `names`."""
    dim = DIMENSIONS[key]
    rows = []
    for group, item in groups.items():
        if not item.get("count") and not item.get("previous_amount"):
            continue
        if key == "provider":
            name = PROVIDER_LABELS.get(group, group)
        else:
            name = names.get(key, {}).get(group, group)
        has_value = group not in (None, "")
        filters = {**period.filters(), dim.filter_name: group} if has_value else {}
        if has_value and key == "model":  # the tasks that asked for it, as grouped, not those answered by it
            filters["model_requested"] = "1"
        rows.append(
            SpendRow(
                label=str(name) if has_value and name not in (None, "") else dim.empty_label,
                spend=_money(item.get("amount")),
                tasks=item.get("count") or 0,
                provisional=_money(item.get("provisional_amount")),
                previous_spend=_money(item.get("previous_amount")),
                filters=filters,
                key="" if group is None else str(group),
            )
        )
    rows.sort(key=lambda row: (-row.spend, -(row.previous_spend or 0), row.label.lower()))
    note = ""
    if any(not row.filters and row.tasks for row in rows):
        note = f"The task list cannot filter on {dim.empty_label}; that row has no link."
    return Breakdown(
        key=dim.key,
        title=dim.title,
        rows=rows,
        total=sum((row.spend for row in rows), ZERO),
        filter_name=dim.filter_name,
        note=note,
    )


GRANULARITIES = ("day", "week", "month")


def _bucket_start(day: date, granularity: str) -> date:
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day


def _bucket_end(start: date, granularity: str) -> date:
    if granularity == "week":
        return start + timedelta(days=6)
    if granularity == "month":
        return start.replace(day=calendar.monthrange(start.year, start.month)[1])
    return start


def _bucket_label(start: date, granularity: str) -> str:
    if granularity == "month":
        return f"{start:%b %Y}"
    if granularity == "week":
        return f"Week of {start:%-d %b %Y}"
    return f"{start:%a %-d %b %Y}"


def spend_over_time(*, period: Period, granularity: str = "day") -> Breakdown:
    """Spend per day, week (from Monday) or month in `period`, every bucket present (zeros included);
    the first and last buckets are clipped to the period, and so are their links."""
    _, figures = _figures(period, days=True)
    return _days_breakdown(period, granularity, figures.days)


def _days_breakdown(period: Period, granularity: str, days: dict) -> Breakdown:
    """Every bucket of the period from {day: figures}, zeros where nothing was found."""
    if granularity not in GRANULARITIES:
        granularity = "day"
    found = defaultdict(dict)
    for day, figures in days.items():
        _add(found[_bucket_start(day, granularity)], figures)
    rows = []
    start = _bucket_start(period.start, granularity)
    while start <= period.end:
        end = _bucket_end(start, granularity)
        item = found.get(start, {})
        clipped = Period(start=max(start, period.start), end=min(end, period.end))
        rows.append(
            SpendRow(
                label=_bucket_label(start, granularity),
                spend=_money(item.get("amount")),
                tasks=item.get("count") or 0,
                provisional=_money(item.get("provisional_amount")),
                filters=clipped.filters(),
                key=start.isoformat(),
            )
        )
        start = end + timedelta(days=1)
    title = {"day": "By day", "week": "By week", "month": "By month"}[granularity]
    return Breakdown(key=granularity, title=title, rows=rows, total=sum((row.spend for row in rows), ZERO))


def spend_breakdowns(*, period: Period, granularity: str = "day") -> list[Breakdown]:
    """The spend page's breakdowns, in page order."""
    return [
        spend_over_time(period=period, granularity=granularity),
        *(spend_by(period=period, dimension=key) for key in DIMENSIONS),
    ]


def spend_report(*, period: Period, granularity: str = "day") -> tuple[SpendTotal, list[Breakdown]]:
    """The whole spend page: the total and every breakdown.

    Settled days come from the rollup (two queries over SpendDay); the days after its watermark from
    the tasks: on PostgreSQL in one scan (GROUPING SETS), elsewhere one query per breakdown. Then
    three small name lookups. All paths give the same figures (the tests run on both databases).
    """
    if granularity not in GRANULARITIES:
        granularity = "day"
    src, figures = _sources(period), _Figures()
    postgres = connection.vendor == "postgresql"
    with _planner_settings() if postgres else nullcontext():
        _add_rolled(figures, src, totals=True, days=True, dimensions=list(DIMENSIONS))
        if postgres:
            _add_live_grouping_sets(figures, src)
        else:
            _add_live(figures, src, totals=True, days=True, dimensions=list(DIMENSIONS))
    names = _group_names(figures.groups)
    breakdowns = [_days_breakdown(period, granularity, figures.days)]
    breakdowns += [_groups_breakdown(key, period, figures.groups[key], names) for key in DIMENSIONS]
    return _total(src, figures.totals), breakdowns
