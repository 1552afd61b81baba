"""Reads of the monitor pages: the list, a monitor's page, the cost estimate."""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, OuterRef, Q, Subquery, Sum, UUIDField
from django.template.defaultfilters import pluralize
from django.utils import timezone

from tasks.crypto import CredentialKeyError
from tasks.models import (
    AlertDelivery,
    AlertDestination,
    AuditEntry,
    Budget,
    Monitor,
    MonitorRun,
    PromptTemplateVersion,
    Task,
)
from tasks.monitors.cadence import Cadence, CadenceError
from tasks.monitors.charts import runs_charts
from tasks.monitors.plans import (
    RunPlan,
    credential_problems,
    plan_charges,
    retry_plans,
    retry_source,
    run_plan,
)
from tasks.monitors.runs import NO_TASKS, batch_task_counts, cap_refusal, run_retryable, tasks_final
from tasks.monitors.scheduler import CATCH_UP_AFTER
from tasks.spend.budgets import budget_name, budget_spent, budgets_for_submission, exact_usd, month_start

ZERO = Decimal("0")
PAGE_RUNS = 60
ANSWER_RUNS = 10


def overdue_since(monitor: Monitor, *, now: datetime) -> datetime | None:
    """The slot an active monitor has been due since when the scheduler has left it more than
    CATCH_UP_AFTER (a scheduler ticks every 30 s: no worker is running it), else None."""
    due = monitor.next_run_at
    if monitor.state != Monitor.State.ACTIVE or due is None or now - due <= CATCH_UP_AFTER:
        return None
    return due


def overdue_count(*, now: datetime) -> int:
    """How many active monitors `overdue_since` would mark: one count over the `monitor_due` index."""
    due = Monitor.objects.filter(state=Monitor.State.ACTIVE, next_run_at__lt=now - CATCH_UP_AFTER)
    return due.count()


def monitor_rows(*, state: str = "") -> list[Monitor]:
    """Every monitor with its last run's state and time, its cost this month and the part of it not final yet
    (`month_provisional`, as the monitor page says it): three queries at most, however many monitors."""
    monitors = Monitor.objects.select_related("owner").order_by("name")
    monitors = monitors.filter(state=state) if state else monitors.exclude(state=Monitor.State.ARCHIVED)
    last = MonitorRun.objects.filter(monitor=OuterRef("pk")).order_by("-slot")
    monitors = list(
        monitors.annotate(
            last_state=Subquery(last.values("state")[:1]),
            last_slot=Subquery(last.values("slot")[:1]),
            last_batch=Subquery(last.values("batch_id")[:1], output_field=UUIDField()),
        )
    )
    _last_runs_done(monitors)
    costs = {
        row["batch__monitor_run__monitor"]: row
        for row in Task.objects.filter(
            created_at__gte=month_start(), batch__monitor_run__monitor__in=monitors
        )
        .values("batch__monitor_run__monitor")
        .annotate(total=Sum("spend"), provisional=Sum("spend", filter=Q(spend_is_final=False)))
        .order_by()
    }
    now = timezone.now()
    for monitor in monitors:
        row = costs.get(monitor.pk, {})
        monitor.month_cost = row.get("total") or ZERO
        monitor.month_provisional = row.get("provisional") or ZERO
        monitor.overdue_since = overdue_since(monitor, now=now)
        monitor.last_state_label = dict(MonitorRun.State.choices).get(monitor.last_state, "")
    return monitors


def _last_runs_done(monitors: list[Monitor]) -> None:
    """A last run still stored Sent whose tasks have all finished is Done, as the monitor page reads it
    (the next tick writes it): one query, none when no last run is sent."""
    sent = [m for m in monitors if m.last_state == MonitorRun.State.SENT]
    if not sent:
        return
    waiting = set(
        Task.objects.filter(batch_id__in=[m.last_batch for m in sent if m.last_batch])
        .exclude(status__in=Task.FINAL_STATUSES)
        .values_list("batch_id", flat=True)
        .order_by()
        .distinct()
    )
    for monitor in sent:
        if monitor.last_batch not in waiting:
            monitor.last_state = MonitorRun.State.DONE


@dataclass
class Estimate:
    per_run: Decimal = ZERO
    runs_per_month: int = 0
    runs_exact: bool = True  # False: reckoned per day (`Cadence.slot_count`), said "about"
    per_month: Decimal = ZERO
    task_count: int = 0
    budgets: list[dict] = field(default_factory=list)
    next_run: datetime | None = None  # as saving now would set it
    time_zone: str = "UTC"


def monitor_estimate(*, monitor: Monitor, plan: RunPlan, now: datetime | None = None) -> Estimate:
    """The estimated cost of one run (its tasks at the queued charge) and of 30 days of the cadence, with the
    budgets that apply to the monitor's tasks and what is left of them, and when it would next run."""
    now = now or datetime.now(UTC)
    estimate = Estimate(per_run=plan.charge, task_count=plan.task_count)
    estimate.time_zone = monitor.time_zone
    try:
        cadence = Cadence.of(monitor)
        estimate.runs_per_month, estimate.runs_exact = cadence.slot_count(now, now + timedelta(days=30))
        estimate.next_run = cadence.next_after(now)
    except CadenceError:
        estimate.runs_per_month = 0
    estimate.per_month = estimate.per_run * estimate.runs_per_month
    scopes = Q(scope=Budget.Scope.TEAM) | Q(scope=Budget.Scope.TAG, tag=monitor.tag)
    if monitor.owner_id:
        scopes |= Q(scope=Budget.Scope.PERSON, user_id=monitor.owner_id)
    for budget in Budget.objects.filter(scopes, is_active=True):
        spent = budget_spent(budget)
        estimate.budgets.append(
            {
                "budget": budget,
                "spent": spent,
                "left": max(budget.monthly_limit - spent, ZERO),
                "limit": budget.monthly_limit,
            }
        )
    return estimate


@dataclass
class MonitorPage:
    monitor: Monitor
    runs: list[MonitorRun]
    status_counts: list[tuple[str, int]]
    run_total: int
    month_cost: Decimal
    total_cost: Decimal
    upcoming: list[datetime]
    overdue_since: datetime | None
    history: list[AuditEntry]
    deliveries: list[AlertDelivery]
    answers: list[dict]
    models: list[str]
    charts: dict | None = None
    month_provisional: Decimal = ZERO  # the part of month_cost not final yet (docs/spend.md)
    cadence: str = ""  # the cadence in words (Cadence.summary)
    newer_version: PromptTemplateVersion | None = None  # of the template it runs, not run until edited
    unsendable: list[str] = field(default_factory=list)  # why its runs will fail (a disabled credential)
    cadence_problem: str = ""  # why it never runs (a cadence saved before the form refused it)


def monitor_page(*, monitor: Monitor) -> MonitorPage:
    runs = list(
        monitor.runs.select_related("batch", "requested_by", "retry_of").order_by("-slot")[:PAGE_RUNS]
    )
    counts = Counter(dict(monitor.runs.values_list("state").annotate(n=Count("pk")).order_by()))
    sent = sum(run.state == MonitorRun.State.SENT for run in runs)
    _run_costs(runs)
    finished = sent - sum(run.state == MonitorRun.State.SENT for run in runs)  # done since the last tick
    counts[MonitorRun.State.SENT] -= finished
    counts[MonitorRun.State.DONE] += finished
    counts = +counts  # no "Sent 0"
    _run_tags(runs, monitor=monitor)
    retried = set(MonitorRun.objects.filter(retry_of__in=runs).values_list("retry_of_id", flat=True))
    for run in runs:
        run.can_retry = run_retryable(run) and run.pk not in retried
    _retry_previews([run for run in runs if run.can_retry], monitor=monitor)
    labels = dict(MonitorRun.State.choices)
    tasks = Task.objects.filter(batch__monitor_run__monitor=monitor)
    this_month = Q(created_at__gte=month_start())
    sums = tasks.aggregate(
        total=Sum("spend"),
        month=Sum("spend", filter=this_month),
        month_provisional=Sum("spend", filter=this_month & Q(spend_is_final=False)),
    )
    month_cost, total_cost = sums["month"] or ZERO, sums["total"] or ZERO
    upcoming = []
    now = timezone.now()
    overdue = overdue_since(monitor, now=now)
    if monitor.state == Monitor.State.ACTIVE and monitor.next_run_at:
        cadence = Cadence.of(monitor)
        # Overdue, the next tick runs the latest slot missed once (a catch-up) and goes on after `now`.
        slot = monitor.next_run_at if overdue is None else cadence.next_after(now)
        while slot is not None and len(upcoming) < 5:
            upcoming.append(slot)
            slot = cadence.next_after(slot)
    history = list(
        AuditEntry.objects.filter(object_type="Monitor", object_id=str(monitor.pk))
        .select_related("actor")
        .order_by("-created_at")[:50]
    )
    deliveries = list(
        AlertDelivery.objects.filter(alert__monitor=monitor)
        .select_related("alert")
        .order_by("-created_at")[:20]
    )
    answers, models = _answer_grid(monitor)
    return MonitorPage(
        monitor=monitor,
        runs=runs,
        status_counts=[(labels.get(state, state), n) for state, n in sorted(counts.items())],
        run_total=sum(counts.values()),
        month_cost=month_cost,
        total_cost=total_cost,
        month_provisional=sums["month_provisional"] or ZERO,
        upcoming=upcoming,
        overdue_since=overdue,
        history=history,
        deliveries=deliveries,
        answers=answers,
        models=models,
        charts=runs_charts(runs, time_zone=monitor.time_zone),
        cadence=Cadence.of(monitor).summary(),
        newer_version=_newer_version(monitor),
        unsendable=credential_problems(monitor=monitor) if monitor.state != Monitor.State.ARCHIVED else [],
        cadence_problem=_cadence_problem(monitor) if monitor.state != Monitor.State.ARCHIVED else "",
    )


def _cadence_problem(monitor: Monitor) -> str:
    try:
        Cadence.of(monitor).check()
    except CadenceError as exc:
        return str(exc)
    return ""


def _run_costs(runs: list[MonitorRun]) -> None:
    """Each run's counts, cost and state as its tasks count now (`run.cost`, the counts and a sent run's
    state are what a tick last wrote: $0 and none until the first, a tick behind while it is sent), so
    each count is what its link to the task list lists, a run whose tasks have all finished reads Done,
    and `run.provisional`, the part of the cost not final yet: estimates, charges at post, a lost reply's
    estimate (docs/spend.md). One query."""
    sums = batch_task_counts(runs)
    for run in runs:
        row = sums.get(run.batch_id)
        run.provisional = ZERO
        if row is not None:
            run.cost, run.provisional = row["cost"] or ZERO, row["provisional"] or ZERO
            run.completed_count, run.failed_count = row["completed"], row["failed"]
            run.unknown_count = row["unknown"]
        if run.state == MonitorRun.State.SENT and tasks_final(row or NO_TASKS):
            run.state = MonitorRun.State.DONE  # what the next tick writes (`runs_refresh`)


def _run_tags(runs: list[MonitorRun], *, monitor: Monitor) -> None:
    """`run.other_tags`: the tags a run's tasks carry other than the monitor's now (sent before its tag was
    changed, or a retry of such a run): their tasks are on those tags' pages, not its own. One query."""
    pairs = (
        Task.objects.filter(batch_id__in=[run.batch_id for run in runs if run.batch_id])
        .exclude(tag=monitor.tag)
        .values_list("batch_id", "tag")
        .order_by()
        .distinct()
    )
    tags = defaultdict(list)
    for batch_id, tag in pairs:
        tags[batch_id].append(tag)
    for run in runs:
        run.other_tags = sorted(tags.get(run.batch_id, []))


def _retry_previews(runs: list[MonitorRun], *, monitor: Monitor) -> None:
    """What pressing Retry on each run would send and cost, said beside its button (`retry_note`), and the
    question it asks first when some of those tasks were charged already (`retry_confirm`)."""
    sources = {run.pk: retry_source(run) for run in runs}
    plans = retry_plans(runs=[source for source in sources.values() if source is not None])
    whole = None  # no run along its retries wrote a task: retried as the monitor's whole plan
    for run in runs:
        source = sources[run.pk]
        if source is not None:
            plan = plans[source.pk]
        else:
            whole = whole or run_plan(monitor=monitor)
            plan = whole
        skipped, tags = [], ""
        if not plan.errors:
            charges = plan_charges(plan, tag=monitor.tag)
            fits = budgets_for_submission(user=monitor.owner, charges=charges)
            skipped = _retry_refusals(plan, monitor=monitor, fits=fits)
            tags = _retry_tags_line(charges, monitor=monitor, fits=fits)
        run.retry_note, run.retry_confirm = retry_note(plan, whole=source is None, skipped=skipped)
        if tags:
            run.retry_note += " " + tags


def _retry_tags_line(charges, *, monitor: Monitor, fits) -> str:
    """When the monitor's tag was changed since the run retried: its tasks go again under the tag they
    were sent with (the retry belongs to that run), so that tag's budget pays, not the new tag's."""
    tags = sorted({tag for tag, _charge in charges} - {monitor.tag})
    if not tags:
        return ""
    names = " and ".join(f"“{tag}”" for tag in tags)
    line = f"Sent under its run's tag {names}, not the monitor's tag now, “{monitor.tag}”: "
    paying = [fit for fit in fits if fit.usage.budget.scope == Budget.Scope.TAG]
    if paying:
        line += " and ".join(
            f"{budget_name(fit.usage.budget)} pays for it ({exact_usd(fit.left)} left this month)"
            for fit in paying
        )
    else:
        line += f"tag {names} has no budget"
    current = Budget.objects.filter(scope=Budget.Scope.TAG, tag=monitor.tag, is_active=True).exists()
    if current:
        line += (
            f", not that of tag “{monitor.tag}”"
            if paying
            else f", and the budget of tag “{monitor.tag}” does not count it"
        )
    return line + "."


def run_other_tags(*, run: MonitorRun) -> list[str]:
    """The tags `run`'s tasks carry other than its monitor's now: a retry of a run sent before the
    monitor's tag was changed resends under the old one."""
    tags = (
        Task.objects.filter(batch_id=run.batch_id).exclude(tag=run.monitor.tag).values_list("tag", flat=True)
    )
    return sorted(set(tags)) if run.batch_id else []


def _retry_refusals(plan: RunPlan, *, monitor: Monitor, fits) -> list[str]:
    """Why a retry of `plan` would be skipped if pressed now: the caps and budgets `run_execute` checks
    (`fits`, read and not reserved: the press checks again)."""
    refusals = []
    if cap := cap_refusal(monitor, plan.charge):
        refusals.append(cap.removeprefix("Skipped: ").rstrip("."))
    for fit in fits:
        if not fit.fits:
            refusals.append(
                f"{budget_name(fit.usage.budget)} has {exact_usd(fit.left)} left this month and this retry "
                f"needs {exact_usd(fit.needs)}"
            )
    return refusals


def retry_note(plan: RunPlan, *, whole: bool = False, skipped: list[str] = ()) -> tuple[str, str]:
    """The sentence beside a Retry button, and the question it asks first ("" when nothing was paid for
    already): how many tasks, their estimated charge, how many of them were charged before failing, and
    why pressing it now would be skipped (`skipped`: a cap's or a budget's refusal)."""
    if plan.errors:
        return "Cannot be sent now: " + " ".join(plan.errors[:3]), ""
    count = plan.task_count
    sends = f"every task of the monitor ({count})" if whole else f"{count} task{pluralize(count)} again"
    note = f"Sends {sends}, up to {exact_usd(plan.charge)}."
    if skipped:
        note += " It would be skipped now: " + "; ".join(skipped) + "."
    paid = []
    if plan.paid_count:
        n = plan.paid_count
        was, it = ("was", "it") if n == 1 else ("were", "they")
        paid.append(f"{n} of these {was} accepted and charged {exact_usd(plan.paid)} before {it} failed")
    if plan.settled_count:
        n = plan.settled_count
        was, its = ("was", "its reply was") if n == 1 else ("were", "their replies were")
        paid.append(
            f"{n} of these {was} counted as charged {exact_usd(plan.settled)} ({its} lost, then settled)"
        )
    if not paid:
        return note, ""
    charged = "; ".join(paid) + "; retrying pays again."
    question = f"Retry {count} failed task{pluralize(count)} for up to {exact_usd(plan.charge)}? {charged}"
    return f"{note} {charged}", question


def _newer_version(monitor: Monitor) -> PromptTemplateVersion | None:
    version = monitor.template_version
    if version is None:
        return None
    return (
        PromptTemplateVersion.objects.filter(template_id=version.template_id, number__gt=version.number)
        .order_by("-number")
        .first()
    )


def _answer_grid(monitor: Monitor) -> tuple[list[dict], list[str]]:
    """Per prompt × model over the newest ANSWER_RUNS runs: how many answers, how many times the answer
    changed from one run to the next, and whether the latest answer is new."""
    batches = list(
        monitor.runs.filter(batch__isnull=False)
        .order_by("-slot")
        .values_list("batch_id", flat=True)[:ANSWER_RUNS]
    )
    rows = (
        Task.objects.filter(batch_id__in=batches, status=Task.Status.COMPLETED)
        .order_by("created_at", "id")
        .values_list("user_prompt", "model_name", "answer_text", "id")
    )
    cells: dict[tuple[str, str], dict] = {}
    models: list[str] = []
    for prompt, model, answer, task_id in rows.iterator():
        if model not in models:
            models.append(model)
        cell = cells.setdefault(
            (prompt, model), {"answers": 0, "changes": 0, "last": None, "latest_changed": False}
        )
        cell["answers"] += 1
        changed = cell["last"] is not None and cell["last"] != answer
        cell["changes"] += changed
        cell["latest_changed"] = changed
        cell["last"], cell["task_id"] = answer, task_id
    prompts: dict[str, dict] = {}
    for (prompt, model), cell in cells.items():
        cell.pop("last")
        prompts.setdefault(prompt, {"prompt": prompt, "cells": {}})["cells"][model] = cell
    grid = []
    for row in prompts.values():
        row["by_model"] = [row["cells"].get(model) for model in models]
        grid.append(row)
    return grid, models


def alert_deliveries(*, failed_only: bool = False, limit: int = 100) -> list[AlertDelivery]:
    deliveries = AlertDelivery.objects.select_related("alert__monitor", "alert__budget").order_by(
        "-created_at"
    )
    if failed_only:
        deliveries = deliveries.filter(state=AlertDelivery.State.FAILED)
    return list(deliveries[:limit])


def monitor_last_editor(monitor: Monitor) -> str:
    """Who made the monitor's latest recorded change ("" if no person did)."""
    entry = (
        AuditEntry.objects.filter(object_type="Monitor", object_id=str(monitor.pk), actor__isnull=False)
        .select_related("actor")
        .order_by("-created_at")
        .first()
    )
    return entry.actor.get_username() if entry else ""


def destination_existing(
    *,
    kind: str,
    emails: str = "",
    url: str = "",
    monitor: Monitor | None = None,
    budget: Budget | None = None,
) -> AlertDestination | None:
    """The monitor's (or budget's) destination that is this one already: the same addresses in any order
    or case, or the same webhook URL (its stored copy is encrypted, so each is read back)."""
    wanted = {address.lower() for address in emails.split(", ") if address}
    for destination in AlertDestination.objects.filter(kind=kind, monitor=monitor, budget=budget):
        if kind == AlertDestination.Kind.EMAIL:
            if {address.strip().lower() for address in destination.emails.split(",")} == wanted:
                return destination
        else:
            try:
                if destination.get_url() == url:
                    return destination
            except CredentialKeyError:  # unreadable under the current keys: cannot be the same one
                continue
    return None
