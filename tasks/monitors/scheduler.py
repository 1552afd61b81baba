"""The scheduler: turns due slots into runs, exactly once per slot, however many schedulers tick.

A tick reads the due monitors with one indexed query (`next_run_at <= now` on the partial index
`monitor_due`, active monitors only), and for each one, in one transaction, moves `next_run_at` past now
with a conditional UPDATE (`WHERE next_run_at = <the value read>`: only one scheduler wins the row) and
inserts the run of the slot, unique per (monitor, slot). After a downtime that missed several slots, the
run is of the latest slot only, marked catch-up with the number of slots it stands for. The tick then
executes every planned run (tasks.monitors.runs.run_execute: caps, budgets, the batch), brings sent runs
up to date, checks the budgets' 80 % and 100 % alerts and delivers the alerts that are due.
"""

import logging
import time as time_module
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR

from django.db import IntegrityError, transaction
from django.utils import timezone

from tasks.models import Alert, Budget, Monitor, MonitorRun
from tasks.monitors.alerts import alert_raise, deliveries_due
from tasks.monitors.cadence import Cadence, CadenceError
from tasks.monitors.runs import run_execute, runs_refresh
from tasks.spend.budgets import budget_spent, exact_usd
from tasks.templatetags.spend_format import ratio_percent

logger = logging.getLogger(__name__)

TICK_LIMIT = 500  # monitors claimed per tick; the next tick takes the rest
# A single slot run this much later than its time (the scheduler was down) is shown as a catch-up.
CATCH_UP_AFTER = timedelta(minutes=10)
MAX_MISSED = 10_000  # slots counted after a downtime


@dataclass
class TickReport:
    claimed: int = 0
    executed: int = 0
    finished: int = 0
    alerts_delivered: int = 0


def monitors_due(*, now: datetime, limit: int = TICK_LIMIT) -> list[tuple[int, datetime]]:
    """(id, next_run_at) of the active monitors whose next slot has come: one query on `monitor_due`."""
    return list(
        Monitor.objects.filter(state=Monitor.State.ACTIVE, next_run_at__lte=now)
        .order_by("next_run_at")
        .values_list("pk", "next_run_at")[:limit]
    )


def slot_claim(*, monitor_id: int, due_at: datetime, now: datetime) -> MonitorRun | None:
    """Create the run of the monitor's latest due slot and move its next slot past `now`; None if another
    scheduler claimed it first (or no slot is due after an edit)."""
    monitor = Monitor.objects.filter(pk=monitor_id).first()
    if monitor is None:
        return None
    cadence = Cadence.of(monitor)
    try:
        slots = cadence.slots_between(due_at - timedelta(microseconds=1), now, limit=MAX_MISSED)
        following = cadence.next_after(now)
    except CadenceError:
        slots, following = [], None
    with transaction.atomic():
        moved = Monitor.objects.filter(pk=monitor_id, state=Monitor.State.ACTIVE, next_run_at=due_at).update(
            next_run_at=following
        )
        if not moved or not slots:
            return None
        slot = slots[-1]
        late = len(slots) > 1 or now - slot > CATCH_UP_AFTER
        try:
            with transaction.atomic():
                return MonitorRun.objects.create(
                    monitor_id=monitor_id,
                    slot=slot,
                    kind=MonitorRun.Kind.CATCH_UP if late else MonitorRun.Kind.SCHEDULED,
                    missed_slots=len(slots),
                )
        except IntegrityError:  # the slot's run exists already
            return None


def scheduler_tick(*, now: datetime | None = None, limit: int = TICK_LIMIT) -> TickReport:
    """One pass of the scheduler; safe to run in any number of processes at once."""
    now = now or timezone.now()
    report = TickReport()
    for monitor_id, due_at in monitors_due(now=now, limit=limit):
        if slot_claim(monitor_id=monitor_id, due_at=due_at, now=now) is not None:
            report.claimed += 1
    # Runs left planned by a process stopped before executing them are executed here too.
    for run_id in MonitorRun.objects.filter(state=MonitorRun.State.PLANNED).values_list("pk", flat=True)[
        :limit
    ]:
        try:
            run = run_execute(run_id=run_id)
        except Exception:  # one run's error must not stop the others
            logger.exception("Monitor run %s could not be executed", run_id)
            continue
        report.executed += run.state != MonitorRun.State.PLANNED
    report.finished = runs_refresh(now=now)
    budgets_alert_check(now=now)
    report.alerts_delivered = deliveries_due()
    return report


def budgets_alert_check(*, now: datetime | None = None) -> None:
    """Raise each budget's 80 % (its warning ratio) and 100 % alerts once a month."""
    month = timezone.localtime(now or timezone.now()).strftime("%Y-%m")
    for budget in Budget.objects.filter(is_active=True, monthly_limit__gt=0):
        spent = budget_spent(budget)
        ratio = spent / budget.monthly_limit
        for threshold, kind, words in (
            (budget.warn_ratio, Alert.Kind.BUDGET_WARNING, f"has used {ratio_percent(ratio, ROUND_FLOOR)}"),
            (1, Alert.Kind.BUDGET_REACHED, "is used up"),
        ):
            if ratio >= threshold:
                alert_raise(
                    key=f"budget:{budget.pk}:{month}:{kind}",
                    kind=kind,
                    message=f"{budget} {words}: {exact_usd(spent)} of {exact_usd(budget.monthly_limit)} "
                    "this month.",
                    budget=budget,
                )


def monitor_schedule(*, monitor: Monitor, now: datetime | None = None) -> None:
    """Set the monitor's next slot after `now` (on create, edit, resume); no catch-up for the time before."""
    now = now or timezone.now()
    following = None
    if monitor.state == Monitor.State.ACTIVE:
        try:
            following = Cadence.of(monitor).next_after(now)
        except CadenceError:
            following = None
    monitor.next_run_at = following
    Monitor.objects.filter(pk=monitor.pk).update(next_run_at=following)


def scheduler_loop(*, interval: float = 30.0, stop=None) -> None:
    """Tick every `interval` seconds until `stop()` is true (the scheduler beside the worker)."""
    while stop is None or not stop():
        started = time_module.monotonic()
        try:
            scheduler_tick()
        except Exception:
            logger.exception("Scheduler tick failed")
        # In short naps, so a stop request is seen within a second.
        while time_module.monotonic() - started < interval and not (stop is not None and stop()):
            time_module.sleep(min(1.0, interval))
