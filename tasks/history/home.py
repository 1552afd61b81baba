"""Reads for the home page: what needs attention and the newest tasks."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Q
from django.utils import timezone

from tasks.history.selectors import IN_PROGRESS, STALE_AFTER, TaskRow, _day_start, _stale_q, newest_rows
from tasks.models import SendChunk, Task
from tasks.monitors.selectors import overdue_count
from tasks.spend import figures, periods, reports
from tasks.spend.budgets import month_start
from tasks.submission.queue import no_worker_sending

# How far back home's "needs attention" counts failed and lost tasks.
ATTENTION_DAYS = 7


@dataclass
class Attention:
    """Tasks that need a look: failed or lost lately, or waiting longer than usual; with the task list's
    query for exactly each group."""

    failed: int
    unknown: int
    stale: int
    since: date  # failed and unknown count from this day on (the list's date_from)
    in_progress: int = 0  # every active task: home's "in progress" count, read in the same query
    overdue_monitors: int = 0  # active monitors no scheduler has run since their slot (no worker?)
    no_worker: bool = False  # tasks ready to send for over a minute and no worker seen
    stale_minutes: int = int(STALE_AFTER.total_seconds() // 60)
    days: int = ATTENTION_DAYS

    @property
    def total(self) -> int:
        return self.failed + self.unknown + self.stale + self.overdue_monitors + self.no_worker

    @property
    def failed_query(self) -> str:
        return f"status=failed&date_from={self.since.isoformat()}"

    @property
    def unknown_query(self) -> str:
        return f"status=unknown&date_from={self.since.isoformat()}"

    @property
    def in_progress_query(self) -> str:
        return f"status={IN_PROGRESS}"


@dataclass
class HomeSummary:
    pending: list[TaskRow]  # the newest tasks in progress; `attention.in_progress` counts them all
    recent: list[TaskRow]
    month_spend: Decimal
    month_final: Decimal
    month_tasks: int
    my_month_spend: Decimal
    month_start: datetime
    month_url: str | None  # the list of this month's tasks, as the spend page links its total
    attention: Attention | None = None


def attention_summary() -> Attention:
    """Failed and unknown tasks created in the last ATTENTION_DAYS days (from midnight, as the list's
    date filter counts), active tasks older than STALE_AFTER and every active task (the list's
    status=in_progress), in one query over the status index (counting figures.EVERY_TASK, so no task's
    row is read for it); then the monitors overdue and whether
    tasks wait with no worker to send them, one query each (two when they have waited a minute)."""
    since = timezone.localdate() - timedelta(days=ATTENTION_DAYS - 1)
    recent_trouble = Q(
        status__in=[Task.Status.FAILED, Task.Status.UNKNOWN], created_at__gte=_day_start(since)
    )
    stale = _stale_q()
    active = Q(status__in=Task.ACTIVE_STATUSES)  # the stale tasks are among them
    counts = Task.objects.filter(recent_trouble | active).aggregate(
        failed=Count(figures.EVERY_TASK, filter=Q(status=Task.Status.FAILED)),
        unknown=Count(figures.EVERY_TASK, filter=Q(status=Task.Status.UNKNOWN)),
        stale=Count(figures.EVERY_TASK, filter=stale),
        in_progress=Count(figures.EVERY_TASK, filter=active),
    )
    return Attention(
        failed=counts["failed"],
        unknown=counts["unknown"],
        stale=counts["stale"],
        since=since,
        in_progress=counts["in_progress"],
        overdue_monitors=overdue_count(now=timezone.now()),
        no_worker=no_worker_sending(SendChunk.objects.all()),
    )


def home_summary(*, user, limit: int = 10) -> HomeSummary:
    """The home page: active tasks, the newest tasks, this month's spend (team and mine).

    The month's figures come from the spend page's selectors, which read the daily rollup for settled
    days and only the newest tasks themselves, so home stays fast at a million tasks.
    """
    pending = newest_rows(Task.objects.filter(status__in=Task.ACTIVE_STATUSES), limit=limit)
    recent = newest_rows(Task.objects.all(), limit=limit)
    period = periods.period_preset("this_month")
    month, mine = reports.spend_total_and_person(period=period, person_id=user.pk)
    return HomeSummary(
        pending=pending,
        recent=recent,
        month_spend=month.spend,
        month_final=month.spend - month.provisional,
        month_tasks=month.tasks,
        my_month_spend=mine,
        month_start=month_start(),
        month_url=month.url,
        attention=attention_summary(),
    )
