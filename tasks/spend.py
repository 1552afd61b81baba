"""Spend selectors: periods, totals and breakdowns, one aggregate query each.

Every figure sums `Task.spend` (the final cost where known, the charge at post otherwise, the
reservation while sending, zero when refused), over tasks *created* in the period, in the site's time
zone. Each figure carries the task-list filters that select exactly the tasks behind it.
"""

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.db import connection, transaction
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDay, TruncMonth, TruncWeek
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from tasks.models import Provider, Task

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


def _in(period: Period) -> Q:
    return Q(created_at__gte=period.start_at, created_at__lt=period.end_before)


def _span(period: Period, previous: Period | None = None):
    start = min(period.start_at, previous.start_at) if previous else period.start_at
    end = max(period.end_before, previous.end_before) if previous else period.end_before
    return Task.objects.filter(created_at__gte=start, created_at__lt=end)


def spend_total(*, period: Period) -> SpendTotal:
    """The period's spend, how much of it is provisional, and the previous period's, in one query."""
    previous = period.previous()
    current = _in(period)
    totals = _span(period, previous).aggregate(
        amount=Sum("spend", filter=current),
        count=Count("pk", filter=current),
        provisional_amount=Sum("spend", filter=current & Q(spend_is_final=False)),
        provisional_count=Count("pk", filter=current & Q(spend_is_final=False)),
        previous_amount=Sum("spend", filter=_in(previous)),
        previous_count=Count("pk", filter=_in(previous)),
    )
    return SpendTotal(
        period=period,
        previous_period=previous,
        spend=_money(totals["amount"]),
        provisional=_money(totals["provisional_amount"]),
        tasks=totals["count"] or 0,
        provisional_tasks=totals["provisional_count"] or 0,
        previous_spend=_money(totals["previous_amount"]),
        previous_tasks=totals["previous_count"] or 0,
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

    @property
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
    label: str  # the field that names a group
    empty_label: str


DIMENSIONS = {
    d.key: d
    for d in (
        Dimension("person", "By person", "person", "submitted_by_id", "submitted_by__username", "(nobody)"),
        Dimension("provider", "By provider", "provider", "provider", "provider", "(none)"),
        Dimension("model", "By model", "model", "model_name", "model_name", "(none)"),
        Dimension("credential", "By credential", "credential", "credential_id", "credential__name", "(none)"),
        Dimension("tag", "By tag", "tag", "tag", "tag", "(no tag)"),
        Dimension(
            "template",
            "By template",
            "template",
            "template_version__template_id",
            "template_version__template__name",
            "(no template)",
        ),
    )
}
PROVIDER_LABELS = dict(Provider.choices)


def spend_by(*, period: Period, dimension: str) -> Breakdown:
    """Spend per person, provider, model, credential, tag or template in `period`, with the previous
    period's spend beside each group; one grouped query."""
    dim = DIMENSIONS[dimension]
    previous = period.previous()
    current = _in(period)
    rows_qs = (
        _span(period, previous)
        .values(group=F(dim.value), name=F(dim.label))
        .annotate(
            amount=Sum("spend", filter=current),
            count=Count("pk", filter=current),
            provisional_amount=Sum("spend", filter=current & Q(spend_is_final=False)),
            previous_amount=Sum("spend", filter=_in(previous)),
        )
        .order_by()
    )
    return _dimension_breakdown(dim, period, rows_qs)


def _dimension_breakdown(dim: Dimension, period: Period, items) -> Breakdown:
    """A breakdown from grouped items: dicts with group, name, amount, count, provisional_amount and
    previous_amount."""
    rows = []
    for item in items:
        group, name = item["group"], item["name"]
        if not item["count"] and not item["previous_amount"]:
            continue
        if dim.key == "provider":
            name = PROVIDER_LABELS.get(group, group)
        has_value = group not in (None, "")
        filters = {**period.filters(), dim.filter_name: group} if has_value else {}
        rows.append(
            SpendRow(
                label=str(name) if has_value and name not in (None, "") else dim.empty_label,
                spend=_money(item["amount"]),
                tasks=item["count"] or 0,
                provisional=_money(item["provisional_amount"]),
                previous_spend=_money(item["previous_amount"]),
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


_TRUNC = {"day": TruncDay, "week": TruncWeek, "month": TruncMonth}


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
    if granularity not in _TRUNC:
        granularity = "day"
    tz = timezone.get_current_timezone()
    trunc = _TRUNC[granularity]("created_at", tzinfo=tz)
    found = {}
    for item in (
        Task.objects.filter(_in(period))
        .annotate(bucket=trunc)
        .values("bucket")
        .annotate(
            amount=Sum("spend"),
            count=Count("pk"),
            provisional_amount=Sum("spend", filter=Q(spend_is_final=False)),
        )
        .order_by()
    ):
        bucket = item["bucket"]
        day = timezone.localtime(bucket, tz).date() if isinstance(bucket, datetime) else bucket
        found[_bucket_start(day, granularity)] = item
    return _timeline_breakdown(period, granularity, found)


def _timeline_breakdown(period: Period, granularity: str, found: dict) -> Breakdown:
    """Every bucket of the period from {bucket start date: item}, zeros where nothing was found."""
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

    On PostgreSQL this is one scan (GROUPING SETS over the period and the previous one) plus three
    small name lookups; elsewhere one query per breakdown. Both give the same figures (the tests run
    on both databases).
    """
    if granularity not in _TRUNC:
        granularity = "day"
    if connection.vendor == "postgresql":
        return _spend_report_grouping_sets(period, granularity)
    return spend_total(period=period), spend_breakdowns(period=period, granularity=granularity)


# The grouping sets, in the order of the GROUPING() bitmask below (leftmost argument = highest bit).
_SETS = ["submitted_by_id", "provider", "model_name", "credential_id", "tag", "template_id", "bucket"]
_SET_DIMENSIONS = {
    "submitted_by_id": "person",
    "provider": "provider",
    "model_name": "model",
    "credential_id": "credential",
    "tag": "tag",
    "template_id": "template",
}


def _spend_report_grouping_sets(period: Period, granularity: str) -> tuple[SpendTotal, list[Breakdown]]:
    previous = period.previous()
    start, end = min(period.start_at, previous.start_at), max(period.end_before, previous.end_before)
    tz_name = str(timezone.get_current_timezone())
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
                   date_trunc(%(granularity)s, t.created_at AT TIME ZONE %(tz)s)::date AS bucket
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
        "granularity": granularity,
        "tz": tz_name,
        "start": start,
        "end": end,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        # The hash aggregates for seven grouping sets need more than the default 4 MB to stay in
        # memory; JIT compilation costs more than it saves on a query that runs for well under a second.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, params)
        names = [col[0] for col in cursor.description]
        results = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    all_bits = (1 << len(_SETS)) - 1
    by_set: dict[str, list[dict]] = {name: [] for name in _SETS}
    totals: dict = {}
    for item in results:
        if item["grouping_id"] == all_bits:
            totals = item
            continue
        for index, name in enumerate(_SETS):
            if item["grouping_id"] == all_bits ^ (1 << (len(_SETS) - 1 - index)):
                by_set[name].append(item)

    labels = _group_labels(by_set)
    breakdowns = []
    found = {item["bucket"]: item for item in by_set["bucket"] if item["count"]}
    breakdowns.append(_timeline_breakdown(period, granularity, found))
    for column, key in _SET_DIMENSIONS.items():
        items = [
            {**item, "group": item[column], "name": labels.get(column, {}).get(item[column], item[column])}
            for item in by_set[column]
        ]
        breakdowns.append(_dimension_breakdown(DIMENSIONS[key], period, items))
    total = SpendTotal(
        period=period,
        previous_period=previous,
        spend=_money(totals.get("amount")),
        provisional=_money(totals.get("provisional_amount")),
        tasks=totals.get("count") or 0,
        provisional_tasks=totals.get("provisional_count") or 0,
        previous_spend=_money(totals.get("previous_amount")),
        previous_tasks=totals.get("previous_count") or 0,
    )
    return total, breakdowns


def _group_labels(by_set: dict[str, list[dict]]) -> dict[str, dict]:
    """Names for the ids found: usernames, credential and template names (three small queries)."""
    from django.contrib.auth import get_user_model

    from tasks.models import Credential, PromptTemplate

    def ids(column):
        return [item[column] for item in by_set[column] if item[column] is not None]

    user_model = get_user_model()
    return {
        "submitted_by_id": dict(
            user_model.objects.filter(pk__in=ids("submitted_by_id")).values_list(
                "pk", user_model.USERNAME_FIELD
            )
        ),
        "credential_id": dict(
            Credential.objects.filter(pk__in=ids("credential_id")).values_list("pk", "name")
        ),
        "template_id": dict(
            PromptTemplate.objects.filter(pk__in=ids("template_id")).values_list("pk", "name")
        ),
    }
