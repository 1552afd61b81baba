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
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cached_property
from urllib.parse import urlencode

from django.db import connection, transaction
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from tasks.models import Provider, SpendDay, SpendRollup, Task
from tasks.spend_rollup import STATE_PK

ZERO = Decimal("0")
CENT_FRACTION = Decimal("0.000001")  # Task money has 6 decimal places; SQLite sums carry noise digits


def _money(value) -> Decimal:
    return (value or ZERO).quantize(CENT_FRACTION)


PERIOD_CHOICES = [
    ("this_month", "This month"),
    ("last_month", "Last month"),
    ("last_7", "Last 7 days"),
    ("last_30", "Last 30 days"),
    ("custom", "Custom"),
]
GRANULARITY_CHOICES = [("day", "Day"), ("week", "Week"), ("month", "Month")]
MAX_PERIOD_DAYS = 366 * 3


# --- Periods ----------------------------------------------------------------------------------------


def local_today() -> date:
    return timezone.localdate()


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Period:
    """Whole days from `start` to `end`, both inclusive, in the site's time zone."""

    start: date
    end: date
    key: str = "custom"

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=timezone.get_current_timezone())

    @property
    def end_before(self) -> datetime:
        """The first instant after the period."""
        return datetime.combine(
            self.end + timedelta(days=1), time.min, tzinfo=timezone.get_current_timezone()
        )

    @property
    def is_month_aligned(self) -> bool:
        return self.key in ("this_month", "last_month")

    def previous(self) -> "Period":
        """The period to compare with: the same span one month earlier for the month presets (1–22 Nov
        against 1–22 Oct), otherwise the same number of days immediately before."""
        if self.is_month_aligned:
            start = _add_months(self.start, -1)
            if self.key == "last_month":
                end = self.start - timedelta(days=1)
            else:
                end = min(_add_months(self.end, -1), self.start - timedelta(days=1))
            return Period(start=start, end=end, key="previous")
        return Period(
            start=self.start - timedelta(days=self.days), end=self.start - timedelta(days=1), key="previous"
        )

    @property
    def label(self) -> str:
        if self.start == self.end:
            return f"{self.start:%-d %b %Y}"
        if self.start.year == self.end.year:
            if self.start.month == self.end.month:
                return f"{self.start:%-d}–{self.end:%-d %b %Y}"
            return f"{self.start:%-d %b} – {self.end:%-d %b %Y}"
        return f"{self.start:%-d %b %Y} – {self.end:%-d %b %Y}"

    def filters(self) -> dict[str, str]:
        return {"date_from": self.start.isoformat(), "date_to": self.end.isoformat()}


def period_preset(key: str, *, today: date | None = None) -> Period:
    today = today or local_today()
    if key == "last_month":
        first = today.replace(day=1)
        end = first - timedelta(days=1)
        return Period(start=end.replace(day=1), end=end, key=key)
    if key == "last_7":
        return Period(start=today - timedelta(days=6), end=today, key=key)
    if key == "last_30":
        return Period(start=today - timedelta(days=29), end=today, key=key)
    return Period(start=today.replace(day=1), end=today, key="this_month")


def period_custom(*, start: date, end: date) -> Period:
    if end < start:
        start, end = end, start
    if (end - start).days >= MAX_PERIOD_DAYS:
        start = end - timedelta(days=MAX_PERIOD_DAYS - 1)
    return Period(start=start, end=end, key="custom")


# --- Task-list links --------------------------------------------------------------------------------


def task_list_url(filters: dict) -> str | None:
    """The task list filtered by `filters`, or None until the history pages exist."""
    try:
        base = reverse("task_list")
    except NoReverseMatch:
        return None
    return f"{base}?{urlencode(filters)}"


# --- Totals -----------------------------------------------------------------------------------------


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


# --- Where the figures come from --------------------------------------------------------------------

_MONEY_KEYS = ("amount", "provisional_amount", "previous_amount")
_COUNT_KEYS = ("count", "provisional_count", "previous_count")


def _add(into: dict, item: dict) -> None:
    """Add one part's figures to a sum (amounts quantized per part: SQLite sums carry noise)."""
    for key in _MONEY_KEYS:
        if key in item:
            into[key] = into.get(key, ZERO) + _money(item[key])
    for key in _COUNT_KEYS:
        if key in item:
            into[key] = into.get(key, 0) + (item[key] or 0)


@dataclass
class _Figures:
    """The sums behind a report: totals, the period's days, and each breakdown's groups."""

    totals: dict = field(default_factory=dict)
    days: dict = field(default_factory=lambda: defaultdict(dict))  # date -> figures
    groups: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(dict)))  # key -> group -> …


@dataclass(frozen=True)
class _Sources:
    """Where a request reads a period (and the one it is compared with) from: rollup rows for the
    days up to `through`, tasks after that."""

    period: Period
    previous: Period
    through: date | None

    @property
    def first(self) -> date:
        return min(self.period.start, self.previous.start)

    @property
    def last(self) -> date:
        return max(self.period.end, self.previous.end)

    @property
    def has_rolled(self) -> bool:
        return self.through is not None and self.through >= self.first

    @property
    def has_live(self) -> bool:
        return self.through is None or self.through < self.last

    @property
    def live_start(self) -> datetime:
        """The first instant read from the tasks."""
        start = Period(start=self.first, end=self.first).start_at
        if self.through is None:
            return start
        return max(start, rollup_end(self.through))

    def live_tasks(self):
        return _span(self.period, self.previous).filter(created_at__gte=self.live_start)

    def rolled_rows(self):
        return SpendDay.objects.filter(day__gte=self.first, day__lte=min(self.last, self.through))


def _sources(period: Period) -> _Sources:
    return _Sources(period=period, previous=period.previous(), through=rolled_through())


def rolled_through() -> date | None:
    """The last day the spend rollup covers, or None when it covers none in this time zone."""
    state = SpendRollup.objects.filter(pk=STATE_PK).values_list("through", "time_zone").first()
    if state is None or state[1] != timezone.get_current_timezone_name():
        return None
    return state[0]


def rollup_end(through: date) -> datetime:
    """The first instant the rollup does not cover, when it covers the days through `through`."""
    return Period(start=through, end=through).end_before


def _in(period: Period) -> Q:
    return Q(created_at__gte=period.start_at, created_at__lt=period.end_before)


def _days_in(period: Period) -> Q:
    return Q(day__gte=period.start, day__lte=period.end)


def _span(period: Period, previous: Period):
    start, end = min(period.start_at, previous.start_at), max(period.end_before, previous.end_before)
    return Task.objects.filter(created_at__gte=start, created_at__lt=end)


# The column of a rollup row that holds each breakdown's group.
_ROLLUP_GROUP = {
    "person": "submitted_by_id",
    "provider": "provider",
    "model": "model_name",
    "credential": "credential_id",
    "tag": "tag",
    "template": "template_id",
}


def _add_rolled(figures: _Figures, src: _Sources, *, totals: bool, days: bool, dimensions) -> None:
    """The rollup's part: two small queries over SpendDay, whatever the period's length."""
    if not src.has_rolled:
        return
    current, previous = _days_in(src.period), _days_in(src.previous)
    kinds = [*dimensions, *([SpendDay.Dimension.TOTAL] if totals else [])]
    if kinds:
        rows = (
            src.rolled_rows()
            .filter(dimension__in=kinds)
            .values(
                "dimension",
                "submitted_by_id",
                "provider",
                "model_name",
                "credential_id",
                "tag",
                template_id=F("template_version__template_id"),
            )
            .annotate(
                amount=Sum("spend", filter=current),
                count=Sum("task_count", filter=current),
                provisional_amount=Sum("provisional", filter=current),
                provisional_count=Sum("provisional_count", filter=current),
                previous_amount=Sum("spend", filter=previous),
                previous_count=Sum("task_count", filter=previous),
            )
            .order_by()
        )
        for row in rows:
            if row["dimension"] == SpendDay.Dimension.TOTAL:
                _add(figures.totals, row)
            else:
                group = row[_ROLLUP_GROUP[row["dimension"]]]
                _add(figures.groups[row["dimension"]][group], row)
    if days:
        for row in (
            src.rolled_rows()
            .filter(current, dimension=SpendDay.Dimension.TOTAL)
            .values("day", amount=F("spend"), count=F("task_count"), provisional_amount=F("provisional"))
        ):
            _add(figures.days[row["day"]], row)


def _add_live(figures: _Figures, src: _Sources, *, totals: bool, days: bool, dimensions) -> None:
    """The tasks' part (days after the watermark): one aggregate query per figure asked for."""
    if not src.has_live:
        return
    tasks = src.live_tasks()
    current, previous = _in(src.period), _in(src.previous)
    unsettled = current & Q(spend_is_final=False)
    if totals:
        _add(
            figures.totals,
            tasks.aggregate(
                amount=Sum("spend", filter=current),
                count=Count("pk", filter=current),
                provisional_amount=Sum("spend", filter=unsettled),
                provisional_count=Count("pk", filter=unsettled),
                previous_amount=Sum("spend", filter=previous),
                previous_count=Count("pk", filter=previous),
            ),
        )
    if days:
        for item in (
            tasks.filter(current)
            .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
            .values("day")
            .annotate(
                amount=Sum("spend"), count=Count("pk"), provisional_amount=Sum("spend", filter=unsettled)
            )
            .order_by()
        ):
            _add(figures.days[item["day"]], item)
    for key in dimensions:
        for item in (
            tasks.values(group=F(DIMENSIONS[key].value))
            .annotate(
                amount=Sum("spend", filter=current),
                count=Count("pk", filter=current),
                provisional_amount=Sum("spend", filter=unsettled),
                previous_amount=Sum("spend", filter=previous),
            )
            .order_by()
        ):
            _add(figures.groups[key][item["group"]], item)


def _figures(period: Period, *, totals=False, days=False, dimensions=()) -> tuple[_Sources, _Figures]:
    src, figures = _sources(period), _Figures()
    _add_rolled(figures, src, totals=totals, days=days, dimensions=dimensions)
    _add_live(figures, src, totals=totals, days=days, dimensions=dimensions)
    return src, figures


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


# --- Breakdowns -------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Dimension:
    key: str
    title: str
    filter_name: str  # the task list's GET parameter
    value: str  # the grouped field
    empty_label: str


DIMENSIONS = {
    d.key: d
    for d in (
        Dimension("person", "By person", "person", "submitted_by_id", "(nobody)"),
        Dimension("provider", "By provider", "provider", "provider", "(none)"),
        Dimension("model", "By model", "model", "model_name", "(none)"),
        Dimension("credential", "By credential", "credential", "credential_id", "(none)"),
        Dimension("tag", "By tag", "tag", "tag", "(no tag)"),
        Dimension("template", "By template", "template", "template_version__template_id", "(no template)"),
    )
}
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


@contextmanager
def _planner_settings():
    """A transaction with PostgreSQL settings for the report's aggregates.

    Hash aggregates (seven grouping sets over the tasks; a few hundred groups over tens of thousands of
    rollup rows, which the planner expects to be as many groups as rows) need more than the default
    4 MB to be chosen and stay in memory; JIT compilation costs more than it saves on these queries.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute("SET LOCAL jit = off")
        yield


# The grouping sets, in the order of the GROUPING() bitmask below (leftmost argument = highest bit).
_SETS = [*_ROLLUP_GROUP.values(), "day"]
_SET_DIMENSIONS = {column: key for key, column in _ROLLUP_GROUP.items()}


def _add_live_grouping_sets(figures: _Figures, src: _Sources) -> None:
    """The tasks' part on PostgreSQL: the total, the days and every breakdown in one scan."""
    if not src.has_live:
        return
    period, previous = src.period, src.previous
    cur = "t.created_at >= %(cur_start)s AND t.created_at < %(cur_end)s"
    prev = "t.created_at >= %(prev_start)s AND t.created_at < %(prev_end)s"
    columns = ", ".join(_SETS)
    sql = f"""
        SELECT GROUPING({columns}) AS grouping_id, {columns},
               SUM(t.spend) FILTER (WHERE {cur}) AS amount,
               COUNT(*) FILTER (WHERE {cur}) AS count,
               SUM(t.spend) FILTER (WHERE {cur} AND NOT t.spend_is_final) AS provisional_amount,
               COUNT(*) FILTER (WHERE {cur} AND NOT t.spend_is_final) AS provisional_count,
               SUM(t.spend) FILTER (WHERE {prev}) AS previous_amount,
               COUNT(*) FILTER (WHERE {prev}) AS previous_count
        FROM (
            SELECT t.created_at, t.spend, t.spend_is_final, t.submitted_by_id, t.provider, t.model_name,
                   t.credential_id, t.tag, v.template_id,
                   (t.created_at AT TIME ZONE %(tz)s)::date AS day
            FROM tasks_task t
            LEFT JOIN tasks_prompttemplateversion v ON v.id = t.template_version_id
            WHERE t.created_at >= %(start)s AND t.created_at < %(end)s
        ) t
        GROUP BY GROUPING SETS ((), {", ".join(f"({c})" for c in _SETS)})
    """  # noqa: S608 - only constant column names are formatted in; values are parameters
    params = {
        "cur_start": period.start_at,
        "cur_end": period.end_before,
        "prev_start": previous.start_at,
        "prev_end": previous.end_before,
        "tz": timezone.get_current_timezone_name(),
        "start": src.live_start,
        "end": max(period.end_before, previous.end_before),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [col[0] for col in cursor.description]
        results = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    all_bits = (1 << len(_SETS)) - 1
    for item in results:
        if item["grouping_id"] == all_bits:
            _add(figures.totals, item)
            continue
        for index, column in enumerate(_SETS):
            if item["grouping_id"] != all_bits ^ (1 << (len(_SETS) - 1 - index)):
                continue
            if column == "day":
                if item["count"]:  # a day of the previous period only
                    _add(figures.days[item["day"]], item)
            else:
                _add(figures.groups[_SET_DIMENSIONS[column]][item[column]], item)


def _group_names(groups: dict) -> dict[str, dict]:
    """Names for the ids found: usernames, credential and template names (a small query each)."""
    from django.contrib.auth import get_user_model

    from tasks.models import Credential, PromptTemplate

    def ids(key):
        return [group for group in groups.get(key, {}) if group is not None]

    user_model = get_user_model()
    names = {}
    if ids("person"):
        names["person"] = dict(
            user_model.objects.filter(pk__in=ids("person")).values_list("pk", user_model.USERNAME_FIELD)
        )
    if ids("credential"):
        names["credential"] = dict(
            Credential.objects.filter(pk__in=ids("credential")).values_list("pk", "name")
        )
    if ids("template"):
        names["template"] = dict(
            PromptTemplate.objects.filter(pk__in=ids("template")).values_list("pk", "name")
        )
    return names
