"""Spend figures gathered from the rollup and the live rows (grouping sets on PostgreSQL)."""

from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from tasks.models import SpendDay, SpendRollup, SpendWeek, Task
from tasks.spend.periods import DIMENSIONS, ZERO, Period, _money
from tasks.spend.rollup import STATE_PK

_MONEY_KEYS = ("amount", "provisional_amount", "previous_amount")
# What counts of tasks count: `created_at` is never null, so COUNT(created_at) is COUNT(*) (which Django
# refuses with a filter), and it is in the indexes such counts read (the covering `task_spend_covering`,
# the status index of home's attention counts), so PostgreSQL answers from the index alone; COUNT(id)
# would read every counted task's row from the table (100 ms instead of 6 ms for 20,000 tasks of one day,
# bench/bench_history.py's home page).
EVERY_TASK = "created_at"


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
    weeks_through: date | None = None

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

    def weeks(self, period: Period) -> tuple[date, date] | None:
        """The Mondays of the first and last whole weeks inside `period` that SpendWeek holds (ending by
        both watermarks), or None."""
        if self.through is None or self.weeks_through is None:
            return None
        first = period.start + timedelta(days=-period.start.weekday() % 7)
        end = min(period.end, self.through, self.weeks_through)
        last_sunday = end - timedelta(days=(end.weekday() + 1) % 7)
        if last_sunday < first + timedelta(days=6):
            return None
        return first, last_sunday - timedelta(days=6)


def _sources(period: Period) -> _Sources:
    through = rolled_through()
    weeks_through = rolled_weeks_through() if through is not None else None
    return _Sources(period=period, previous=period.previous(), through=through, weeks_through=weeks_through)


def rolled_through() -> date | None:
    """The last day the spend rollup covers, or None when it covers none in this time zone."""
    state = SpendRollup.objects.filter(pk=STATE_PK).values_list("through", "time_zone").first()
    if state is None or state[1] != timezone.get_current_timezone_name():
        return None
    return state[0]


def rolled_weeks_through() -> date | None:
    """The last Sunday the rollup's weekly sums cover, or None."""
    return SpendRollup.objects.filter(pk=STATE_PK).values_list("weeks_through", flat=True).first()


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
        # Whole weeks from SpendWeek, the other days from SpendDay.
        current_weeks, previous_weeks = src.weeks(src.period), src.weeks(src.previous)
        days_left = Q(pk__in=[])
        for period, weeks in ((src.period, current_weeks), (src.previous, previous_weeks)):
            end = min(period.end, src.through)
            if weeks is None:
                days_left |= Q(day__gte=period.start, day__lte=end)
            else:  # the days before the first whole week and after the last (index ranges, not a filter)
                days_left |= Q(day__gte=period.start, day__lt=weeks[0])
                days_left |= Q(day__gt=weeks[1] + timedelta(days=6), day__lte=end)
        parts = [(src.rolled_rows().filter(days_left), current, previous)]
        if current_weeks or previous_weeks:
            parts.append(
                (
                    SpendWeek.objects.filter(_weeks_in(current_weeks) | _weeks_in(previous_weeks)),
                    _weeks_in(current_weeks),
                    _weeks_in(previous_weeks),
                )
            )
        for rows, current_rows, previous_rows in parts:
            _add_rolled_groups(figures, rows.filter(dimension__in=kinds), current_rows, previous_rows)
    if days:
        for row in (
            src.rolled_rows()
            .filter(current, dimension=SpendDay.Dimension.TOTAL)
            .values("day", amount=F("spend"), count=F("task_count"), provisional_amount=F("provisional"))
        ):
            _add(figures.days[row["day"]], row)


def _weeks_in(weeks: tuple[date, date] | None) -> Q:
    """SpendWeek rows of the weeks from Monday weeks[0] to Monday weeks[1] (none when None)."""
    if weeks is None:
        return Q(week__isnull=True)  # no row: `week` is never null
    return Q(week__gte=weeks[0], week__lte=weeks[1])


def _add_rolled_groups(figures: _Figures, rows, current: Q, previous: Q) -> None:
    """Sum rollup rows (SpendDay or SpendWeek) per breakdown group, for the period and the previous one."""
    rows = (
        rows.values(
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


def _add_live(figures: _Figures, src: _Sources, *, totals: bool, days: bool, dimensions) -> None:
    """The tasks' part (days after the watermark): one aggregate query per figure asked for, the totals
    summed from the first breakdown's groups when there is one."""
    if not src.has_live:
        return
    tasks = src.live_tasks()
    current, previous = _in(src.period), _in(src.previous)
    unsettled = current & Q(spend_is_final=False)
    per_group = {
        "amount": Sum("spend", filter=current),
        "count": Count(EVERY_TASK, filter=current),
        "provisional_amount": Sum("spend", filter=unsettled),
        "previous_amount": Sum("spend", filter=previous),
    }
    total_only = {
        "provisional_count": Count(EVERY_TASK, filter=unsettled),
        "previous_count": Count(EVERY_TASK, filter=previous),
    }
    if totals and not dimensions:
        _add(figures.totals, tasks.aggregate(**per_group, **total_only))
    if days:
        for item in (
            tasks.filter(current)
            .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
            .values("day")
            .annotate(
                amount=Sum("spend"),
                count=Count(EVERY_TASK),
                provisional_amount=Sum("spend", filter=unsettled),
            )
            .order_by()
        ):
            _add(figures.days[item["day"]], item)
    for index, key in enumerate(dimensions):
        # Every task is in exactly one group of a breakdown, so the totals are the sum of the first
        # breakdown's groups: one scan of the tasks fewer (home: this month's total and mine).
        sums_totals = totals and index == 0
        aggregates = {**per_group, **total_only} if sums_totals else per_group
        for item in tasks.values(group=F(DIMENSIONS[key].value)).annotate(**aggregates).order_by():
            if sums_totals:
                _add(figures.totals, item)
            _add(figures.groups[key][item["group"]], {name: item[name] for name in per_group})


def _figures(period: Period, *, totals=False, days=False, dimensions=()) -> tuple[_Sources, _Figures]:
    src, figures = _sources(period), _Figures()
    _add_rolled(figures, src, totals=totals, days=days, dimensions=dimensions)
    _add_live(figures, src, totals=totals, days=days, dimensions=dimensions)
    return src, figures


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
