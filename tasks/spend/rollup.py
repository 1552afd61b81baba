"""The spend rollup: pre-aggregated spend of settled days, so the spend page reads a few hundred
rows per day instead of every task.

A day is *settled* when it ended more than SETTLE_AFTER ago and none of its tasks can still change:
none is queued, submitted or pending, and none is "reply lost" with an upstream id the collection could
still match. A day gains no task once it has ended (rows are committed before anything is sent), and the
services never change the spend of a final task, so from then on the day's `SpendDay` rows stay exact.
A day with a task still in flight stops the rollup there until a later run. `SpendRollup.through` is the
watermark: every day up to it is rolled up; the page reads tasks for the days after it.

Whole weeks (Monday to Sunday) are summed once more into `SpendWeek` rows, so a long period reads one
row per group and week instead of seven. `SpendRollup.weeks_through` is their watermark: every week
ending by it holds exactly the sum of its `SpendDay` rows (a day rebuilt inside such a week rebuilds
its week in the same transaction); the page reads a week only when it also ends by `through`.
"""

import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone

from tasks.models import SpendDay, SpendRollup, SpendWeek, TagMonth, Task

SETTLE_AFTER = timedelta(minutes=30)  # lets the day's last submissions record their answers
STATE_PK = 1
_MONEY = Decimal("0.000001")

# The task column each breakdown's rows keep (the other columns stay empty).
_COLUMNS = {
    SpendDay.Dimension.PERSON: "submitted_by_id",
    SpendDay.Dimension.PROVIDER: "provider",
    SpendDay.Dimension.MODEL: "model_name",
    SpendDay.Dimension.CREDENTIAL: "credential_id",
    SpendDay.Dimension.TAG: "tag",
    SpendDay.Dimension.TEMPLATE: "template_version_id",
}


@dataclass(frozen=True)
class RollupResult:
    rolled: list[date]  # the days (re)built by this run
    through: date | None  # the watermark after the run
    stopped_at: date | None = None  # a day past its settling time that still has a changing task


def rollup_time_zone() -> zoneinfo.ZoneInfo:
    """Days are bucketed in settings.TIME_ZONE, as the spend page buckets them."""
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=rollup_time_zone())


def last_settled_day(*, now: datetime | None = None) -> date:
    """The latest day whose end is more than SETTLE_AFTER before `now`."""
    limit = (now or timezone.now()) - SETTLE_AFTER
    day = limit.astimezone(rollup_time_zone()).date() - timedelta(days=1)
    if _day_start(day + timedelta(days=1)) >= limit:  # `limit` fell exactly on a midnight
        day -= timedelta(days=1)
    return day


def _day_tasks(day: date):
    """The tasks created on `day` (in the rollup's time zone)."""
    return Task.objects.filter(
        created_at__gte=_day_start(day), created_at__lt=_day_start(day + timedelta(days=1))
    )


def _unsettled(day: date):
    """The day's tasks whose spend may still change."""
    return _day_tasks(day).filter(
        Q(status__in=Task.ACTIVE_STATUSES) | Q(status=Task.Status.UNKNOWN, upstream_task_id__isnull=False)
    )


def _day_rows(day: date) -> list[SpendDay]:
    """The day's rollup rows: its whole, then one row per group of each breakdown."""
    groups = (
        _day_tasks(day)
        .values(*_COLUMNS.values(), "spend_is_final")
        .annotate(
            amount=Sum("spend"), count=Count("pk"), first_at=Min("created_at"), last_at=Max("created_at")
        )
        .order_by()
    )
    sums: dict[tuple, list] = defaultdict(lambda: [Decimal("0"), Decimal("0"), 0, 0, None, None])
    for group in groups:
        # Quantized per group: SQLite's sums carry floating-point noise below the sixth decimal.
        amount, count = (group["amount"] or Decimal("0")).quantize(_MONEY), group["count"]
        keys = [(SpendDay.Dimension.TOTAL, None)]
        keys += [(dimension, group[column]) for dimension, column in _COLUMNS.items()]
        for key in keys:
            figures = sums[key]
            figures[0] += amount
            figures[2] += count
            if not group["spend_is_final"]:
                figures[1] += amount
                figures[3] += count
            figures[4] = min(figures[4] or group["first_at"], group["first_at"])
            figures[5] = max(figures[5] or group["last_at"], group["last_at"])
    rows = []
    for (dimension, value), (amount, provisional, count, provisional_count, first, last) in sums.items():
        row = SpendDay(
            day=day,
            dimension=dimension,
            spend=amount,
            provisional=provisional,
            task_count=count,
            provisional_count=provisional_count,
            first_at=first,
            last_at=last,
        )
        if dimension != SpendDay.Dimension.TOTAL:
            setattr(row, _COLUMNS[dimension], value)
        rows.append(row)
    return rows


def tag_month_rebuild(day: date) -> None:
    """Replace the TagMonth rows of `day`'s month by the sum of that month's SpendDay tag rows.

    Called in the transaction that rebuilt `day`, so TagMonth always equals its month's SpendDay rows."""
    month = day.replace(day=1)
    next_month = (month + timedelta(days=32)).replace(day=1)
    TagMonth.objects.filter(month=month).delete()
    groups = (
        SpendDay.objects.filter(dimension=SpendDay.Dimension.TAG, day__gte=month, day__lt=next_month)
        .exclude(tag="")
        .values("tag")
        .annotate(spend=Sum("spend"), count=Sum("task_count"), first=Min("first_at"), last=Max("last_at"))
        .order_by()
    )
    TagMonth.objects.bulk_create(
        TagMonth(
            month=month,
            tag=g["tag"],
            spend=g["spend"],
            task_count=g["count"],
            first_at=g["first"],
            last_at=g["last"],
        )
        for g in groups
    )


def _first_task_day() -> date | None:
    first = Task.objects.aggregate(first=Min("created_at"))["first"]
    return first.astimezone(rollup_time_zone()).date() if first else None


def rollup_first_day() -> date | None:
    """Where a full rebuild starts: the first task's day, or an older rolled-up day."""
    days = [d for d in (_first_task_day(), SpendDay.objects.aggregate(d=Min("day"))["d"]) if d]
    return min(days, default=None)


def _state() -> SpendRollup:
    state, _ = SpendRollup.objects.get_or_create(pk=STATE_PK)
    if state.time_zone != settings.TIME_ZONE:
        # Rows bucketed in another time zone are wrong for this one: start again.
        with transaction.atomic():
            SpendDay.objects.all().delete()
            SpendWeek.objects.all().delete()
            TagMonth.objects.all().delete()
            state.through, state.weeks_through, state.time_zone = None, None, settings.TIME_ZONE
            state.save()
    return state


def spend_rollup(
    *, through: date | None = None, since: date | None = None, now: datetime | None = None
) -> RollupResult:
    """(Re)build the rollup rows of every settled day not rolled up yet, up to `through` when given.

    Each day is rebuilt in its own transaction: its rows are deleted and replaced by the aggregate of
    its tasks, and the watermark advances with them, so the spend page always sees a day either
    complete or not at all. Idempotent: days already rolled up are skipped (another run may do them
    at the same time: the state row is locked per day). `since` re-rolls the days from that date
    even if they were rolled up, for tasks written with past dates (generate_tasks, a restore).
    Stops at the first day past its settling time that still has a task whose spend can change (the
    worker was down), and says so; later runs continue from there.
    """
    target = last_settled_day(now=now)
    if through is not None:
        target = min(target, through)
    state = _state()
    first = _first_task_day()
    if since is not None:
        start = since
    elif state.through is not None:
        start = state.through + timedelta(days=1)
    else:
        start = first or target + timedelta(days=1)
    if first is not None and since is None:
        start = max(start, first)  # nothing to aggregate before the first task

    rolled, stopped_at = [], None
    day = start
    while day <= target:
        with transaction.atomic():
            state = SpendRollup.objects.select_for_update().get(pk=STATE_PK)
            done = state.through is not None and day <= state.through
            if done and since is None:  # a `since` run rebuilds the days it passes
                day += timedelta(days=1)
                continue
            if _unsettled(day).exists():
                stopped_at = day
                break
            SpendDay.objects.filter(day=day).delete()
            SpendDay.objects.bulk_create(_day_rows(day))
            monday = week_start(day)
            if state.weeks_through is not None and monday + timedelta(days=6) <= state.weeks_through:
                _build_week(monday)  # a day of a summed week changed: the week follows
            tag_month_rebuild(day)
            if not done:
                state.through = day
                state.save(update_fields=["through", "updated_at"])
        rolled.append(day)
        day += timedelta(days=1)
    if stopped_at is not None:
        _sum_weeks()
        state.refresh_from_db()
        return RollupResult(rolled=rolled, through=state.through, stopped_at=stopped_at)

    if since is None and (first is None or first > target):
        # No task on or before the target day: those empty days are covered too.
        with transaction.atomic():
            state = SpendRollup.objects.select_for_update().get(pk=STATE_PK)
            if state.through is None or state.through < target:
                state.through = target
                state.save(update_fields=["through", "updated_at"])
    _sum_weeks()
    state.refresh_from_db()
    return RollupResult(rolled=rolled, through=state.through)


def week_start(day: date) -> date:
    """The Monday of `day`'s week."""
    return day - timedelta(days=day.weekday())


def _build_week(monday: date) -> None:
    """Replace the week's SpendWeek rows by the sums of its SpendDay rows (in the caller's transaction)."""
    groups = (
        SpendDay.objects.filter(day__gte=monday, day__lte=monday + timedelta(days=6))
        .values(
            "dimension",
            "submitted_by_id",
            "provider",
            "model_name",
            "credential_id",
            "template_version_id",
            "tag",
        )
        .annotate(
            sum_spend=Sum("spend"),
            sum_provisional=Sum("provisional"),
            sum_count=Sum("task_count"),
            sum_provisional_count=Sum("provisional_count"),
        )
        .order_by()
    )
    rows = [
        SpendWeek(
            week=monday,
            dimension=group["dimension"],
            submitted_by_id=group["submitted_by_id"],
            provider=group["provider"],
            model_name=group["model_name"],
            credential_id=group["credential_id"],
            template_version_id=group["template_version_id"],
            tag=group["tag"],
            # Quantized: SQLite's sums carry floating-point noise below the sixth decimal.
            spend=(group["sum_spend"] or Decimal("0")).quantize(_MONEY),
            provisional=(group["sum_provisional"] or Decimal("0")).quantize(_MONEY),
            task_count=group["sum_count"] or 0,
            provisional_count=group["sum_provisional_count"] or 0,
        )
        for group in groups
    ]
    SpendWeek.objects.filter(week=monday).delete()
    SpendWeek.objects.bulk_create(rows)


def _sum_weeks() -> None:
    """Sum every whole week up to the watermark not summed yet, and advance `weeks_through`."""
    with transaction.atomic():
        state = SpendRollup.objects.select_for_update().get(pk=STATE_PK)
        if state.through is None:
            return
        if state.weeks_through is not None:
            monday = state.weeks_through + timedelta(days=1)
        else:
            first = SpendDay.objects.aggregate(first=Min("day"))["first"]
            monday = week_start(first or state.through)
        last_sunday = None
        while monday + timedelta(days=6) <= state.through:
            _build_week(monday)
            last_sunday = monday + timedelta(days=6)
            monday += timedelta(days=7)
        if last_sunday is not None:
            state.weeks_through = last_sunday
            state.save(update_fields=["weeks_through", "updated_at"])


ROLLUP_AT = time(0, 10)  # the minute past each hour the job runs


def rollup_next_run(*, now: datetime | None = None) -> datetime:
    """The next run: ROLLUP_AT minutes past the next hour."""
    now = now or timezone.now()
    return now.replace(minute=ROLLUP_AT.minute, second=0, microsecond=0) + timedelta(hours=1)


def rollup_claim_next_run(*, now: datetime | None = None) -> datetime | None:
    """Claim the next hourly run: its time when no run is planned later than `now`, else None.

    The hourly job re-enqueues itself only with a claim, so an extra run (enqueued again at each
    worker start) rolls up and stops instead of starting a second chain. Call it in a transaction
    with the enqueue, so a failed enqueue gives the claim back.
    """
    now = now or timezone.now()
    _state()
    state = SpendRollup.objects.select_for_update().get(pk=STATE_PK)
    if state.next_run_at is not None and state.next_run_at > now:
        return None
    state.next_run_at = rollup_next_run(now=now)
    state.save(update_fields=["next_run_at", "updated_at"])
    return state.next_run_at


def rollup_reopen(*, created_at: datetime) -> None:
    """A task created at `created_at` changed its spend after its day was rolled up (a lost reply
    reconciled, resolved or settled, tasks.submission.reconcile): that day and the ones after it are read
    from the tasks again, and rebuilt by the next rollup once settled. Call it in the change's transaction."""
    day = created_at.astimezone(rollup_time_zone()).date()
    state = SpendRollup.objects.select_for_update().filter(pk=STATE_PK).first()
    if state is not None and state.through is not None and state.through >= day:
        state.through = day - timedelta(days=1)
        state.save(update_fields=["through", "updated_at"])
