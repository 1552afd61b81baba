"""A monitor's runs: planning one as a batch through the durable sending, or skipping it with its reason.

`run_execute` is the one place a run turns into tasks, in **one transaction** with the run's row locked:
the caps and budgets are checked, the batch, every task row and its chunks are written
(`submission.sending.submit_task_ids`), and the run becomes `sent`, or it becomes `skipped`/`failed` with
its reason. A process killed anywhere before that commit leaves the run `planned` with nothing written, and
the next scheduler tick executes it; once it has committed, the run is never planned again. Nothing is
posted here: workers send the chunks (docs/task-lifecycle.md). Task i of a run carries the idempotency key
`monitor:<run id>:<i>`, a second guard against writing a run's tasks twice.
"""

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Count, Q, Sum
from django.template.defaultfilters import pluralize
from django.utils import timezone

from tasks.models import Alert, Batch, Monitor, MonitorRun, Task, TaskLabel
from tasks.monitors.alerts import alert_raise
from tasks.monitors.cadence import slot_label
from tasks.monitors.plans import plan_charges, retry_plan, retry_source, run_plan
from tasks.spend.budgets import BudgetExceeded, budgets_reserve, exact_usd, month_start
from tasks.submission import sending
from tasks.team.audit import audit_record

logger = logging.getLogger(__name__)

ZERO = Decimal("0")
# A task still unknown this long after its run was planned is reported (its reply was lost).
UNKNOWN_ALERT_AFTER = timedelta(minutes=30)
REFRESH_WINDOW = timedelta(days=7)
RECENT_REFRESH_LIMIT = 500
LATE_REFRESH_EVERY = timedelta(minutes=10)
LATE_REFRESH_LIMIT = 200


class RunRefused(Exception):
    """A run cannot be started now; the message is meant for the person."""


def monitor_month_cost(*, monitor: Monitor, now: datetime | None = None) -> Decimal:
    """What the monitor's runs count this month: final costs, charges at post and reservations."""
    total = Task.objects.filter(
        batch__monitor_run__monitor=monitor, created_at__gte=month_start(now)
    ).aggregate(total=Sum("spend"))["total"]
    return (total or ZERO).quantize(Decimal("0.000001"))


def run_now(*, monitor: Monitor, user, request_key: str | None = None) -> tuple[MonitorRun, bool]:
    """A run outside the schedule, counted against the caps like any other; executed at once (it only
    writes the plan: workers send it). `request_key`, the pressed page's one-time key: a second press of
    that page finds the run the first made (and executes it if the first was cut off before): returns
    (the run, whether it was made now)."""
    if monitor.state == Monitor.State.ARCHIVED:
        raise RunRefused("An archived monitor does not run.")
    if request_key and (pressed := _run_of_key(monitor, request_key)) is not None:
        return run_execute(run_id=pressed.pk), False
    now = timezone.now()
    for attempt in range(3):
        try:
            with transaction.atomic():
                run = MonitorRun.objects.create(
                    monitor=monitor,
                    slot=now + timedelta(microseconds=attempt),
                    kind=MonitorRun.Kind.MANUAL,
                    requested_by=user if user is not None and user.pk else None,
                    request_key=request_key or None,
                )
            break
        except IntegrityError:  # the same microsecond as another run, or the same press on another process
            if request_key and (pressed := _run_of_key(monitor, request_key)) is not None:
                return run_execute(run_id=pressed.pk), False
            continue
    else:
        raise RunRefused("Another run of this monitor was started at the same moment; try again.")
    return run_execute(run_id=run.pk), True


def _run_of_key(monitor: Monitor, request_key: str) -> MonitorRun | None:
    return MonitorRun.objects.filter(monitor=monitor, request_key=request_key).first()


def run_retryable(run: MonitorRun) -> bool:
    """A run that failed: its plan could not run (e.g. a disabled credential), or tasks of it failed
    (e.g. the upstream refused them); or a retry skipped by a cap or budget (nothing else would ever
    resend the failed tasks it stands for)."""
    return (
        run.state == MonitorRun.State.FAILED
        or (run.state == MonitorRun.State.DONE and run.failed_count > 0)
        or (run.state == MonitorRun.State.SKIPPED and run.kind == MonitorRun.Kind.RETRY)
    )


def run_retry(*, run: MonitorRun, user) -> tuple[MonitorRun, bool]:
    """One new run of the monitor, marked as a retry of the failed `run`, counted against the caps and
    executed as any run (it only writes the plan): the failed tasks of `run` again, or the monitor's whole
    plan if `run` failed before writing any (`plans.retry_plan`). A second press (a double submit) finds
    the first retry, and executes it if the first press was cut off before (as Run now does): returns
    (the retry, whether it was made now)."""
    retry = _retry_made(run, user)
    if retry is not None:
        return retry, True
    existing = MonitorRun.objects.get(retry_of_id=run.pk)  # made by a first press of the page
    return run_execute(run_id=existing.pk), False


def _retry_made(run: MonitorRun, user) -> MonitorRun | None:
    """`run_retry`'s new retry, executed; None when `run` has one already (its row is left unexecuted
    here, so `run_execute` is never called inside this transaction)."""
    with transaction.atomic():
        failed = MonitorRun.objects.select_for_update().select_related("monitor").get(pk=run.pk)
        if MonitorRun.objects.filter(retry_of=failed).exists():
            return None
        # Retryable as its page reads it, from its tasks: the last ones may have failed since the last tick.
        if failed.state in (MonitorRun.State.SENT, MonitorRun.State.DONE):
            counts = batch_task_counts([failed]).get(failed.batch_id, NO_TASKS)
            if failed.state == MonitorRun.State.SENT:
                _run_refresh(failed, counts, now=timezone.now())
            failed.failed_count = counts["failed"]
        if not run_retryable(failed):
            raise RunRefused("Only a failed run can be retried.")
        if failed.monitor.state == Monitor.State.ARCHIVED:
            raise RunRefused("An archived monitor does not run.")
        try:
            with transaction.atomic():
                retry = MonitorRun.objects.create(
                    monitor=failed.monitor,
                    slot=timezone.now(),
                    kind=MonitorRun.Kind.RETRY,
                    retry_of=failed,
                    requested_by=user if user is not None and user.pk else None,
                )
        except IntegrityError:  # the same press on another process (SQLite takes no row lock)
            if not MonitorRun.objects.filter(retry_of=failed).exists():
                raise RunRefused(
                    "Another run of this monitor started at the same moment; try again."
                ) from None
            return None
        audit_record(
            actor=user,
            action="monitor.run_retry",
            obj=failed.monitor,
            changes={"retry_of": str(failed.pk), "slot": failed.slot, "retry": str(retry.pk)},
        )
    return run_execute(run_id=retry.pk)


def run_execute(*, run_id) -> MonitorRun:
    """Turn a planned run into its batch (or skip it); a run already executed is returned as it is.

    Safe to call twice and from several processes at once: the run's row is locked, and only a
    `planned` run is executed.
    """
    with transaction.atomic():
        run = MonitorRun.objects.select_for_update().get(pk=run_id)
        if run.state != MonitorRun.State.PLANNED:
            return run
        # The monitor's row too: two runs of one monitor check its monthly cap one after the other.
        monitor = (
            Monitor.objects.select_for_update(of=("self",))
            .select_related("template_version__template")
            .get(pk=run.monitor_id)
        )
        source = retry_source(run.retry_of) if run.retry_of_id else None
        plan = retry_plan(run=source) if source is not None else run_plan(monitor=monitor)
        if plan.errors:
            return _run_close(run, MonitorRun.State.FAILED, "Not sent: " + " ".join(plan.errors[:5]))
        run.task_count = plan.task_count
        run.estimated_charge = plan.charge
        refusal = cap_refusal(monitor, plan.charge)
        if refusal:
            return _run_close(run, MonitorRun.State.SKIPPED, refusal)
        charges = plan_charges(plan, tag=monitor.tag)
        try:
            with transaction.atomic():
                budgets_reserve(user=monitor.owner, charges=charges)
        except BudgetExceeded as exc:
            return _run_close(run, MonitorRun.State.SKIPPED, str(exc))
        batch = Batch(
            name=f"{monitor.name} · {run.get_kind_display()} {slot_label(run.slot, monitor.time_zone)}"[:200],
            template_version_id=monitor.template_version_id,
            created_by=monitor.owner,
            task_count=plan.task_count,
            row_count=plan.row_count,
            model_names=plan.models,
            estimated_charge=plan.charge,
        )
        index = 0
        try:
            with transaction.atomic():
                for group in plan.groups:
                    specs = []
                    for body, values in zip(group.bodies, group.variables, strict=True):
                        specs.append(
                            sending.TaskSpec(
                                provider=group.provider,
                                body=body,
                                idempotency_key=f"monitor:{run.pk}:{index}",
                                template_version_id=monitor.template_version_id,
                                variables=values or None,
                            )
                        )
                        index += 1
                    sending.submit_task_ids(
                        specs=specs,
                        credential=group.credential,
                        user=monitor.owner,
                        batch=batch,
                        mode=group.mode,
                        budgets_checked=True,  # above, for the whole run, in this same transaction
                    )
        except sending.SubmissionError as exc:
            return _run_close(run, MonitorRun.State.FAILED, f"Not sent: {exc}")
        if monitor.labels:
            _label_batch(batch, monitor.labels, monitor.owner)
        run.batch = batch
        run.state = MonitorRun.State.SENT
        run.save(update_fields=["batch", "state", "task_count", "estimated_charge"])
    return run


def cap_refusal(monitor: Monitor, charge: Decimal) -> str:
    """Why a run of `charge` is skipped by the monitor's caps ("Skipped: …"); empty when it fits."""
    if monitor.cap_per_run is not None and charge > monitor.cap_per_run:
        return (
            f"Skipped: this run would cost up to {exact_usd(charge)}, over the monitor's cap of "
            f"{exact_usd(monitor.cap_per_run)} per run."
        )
    if monitor.cap_per_month is not None:
        spent = monitor_month_cost(monitor=monitor)
        if spent + charge > monitor.cap_per_month:
            return (
                f"Skipped: the monitor has used {exact_usd(spent)} of its {exact_usd(monitor.cap_per_month)} "
                f"this month and this run needs up to {exact_usd(charge)}."
            )
    return ""


def _run_close(run: MonitorRun, state: str, reason: str) -> MonitorRun:
    """Skip or fail a run, with its reason on the monitor page, in the audit log and as an alert."""
    run.state = state
    run.reason = reason[:2000]
    run.finished_at = timezone.now()
    run.save(update_fields=["state", "reason", "finished_at", "task_count", "estimated_charge"])
    skipped = state == MonitorRun.State.SKIPPED
    audit_record(
        actor=run.requested_by,
        action="monitor.run_skipped" if skipped else "monitor.run_failed",
        obj=run.monitor,
        changes={"slot": run.slot, "kind": run.kind, "reason": run.reason},
    )
    alert_raise(
        key=f"run:{run.pk}:{state}",
        kind=Alert.Kind.RUN_SKIPPED if skipped else Alert.Kind.RUN_FAILED,
        message=f"{run.monitor.name}: the run of {slot_label(run.slot, run.monitor.time_zone)} — {reason}",
        monitor=run.monitor,
        run=run,
    )
    return run


def _label_batch(batch: Batch, labels: list[str], owner) -> None:
    task_ids = list(batch.tasks.values_list("pk", flat=True))
    TaskLabel.objects.bulk_create(
        [TaskLabel(task_id=pk, name=name[:60], created_by=owner) for pk in task_ids for name in labels],
        ignore_conflicts=True,
    )


def batch_task_counts(runs: list[MonitorRun]) -> dict:
    """The runs' tasks as they are now, by batch id: how many (`total`), their `cost` and the part of it
    not final yet (`provisional`), and how many are completed, failed and unknown. One query."""
    S = Task.Status
    rows = (
        Task.objects.filter(batch_id__in=[run.batch_id for run in runs if run.batch_id])
        .values("batch_id")
        .annotate(
            total=Count("pk"),
            cost=Sum("spend"),
            provisional=Sum("spend", filter=Q(spend_is_final=False)),
            completed=Count("pk", filter=Q(status=S.COMPLETED)),
            failed=Count("pk", filter=Q(status=S.FAILED)),
            unknown=Count("pk", filter=Q(status=S.UNKNOWN)),
        )
        .order_by()
    )
    return {row["batch_id"]: row for row in rows}


# `batch_task_counts` of a run whose batch has no task (or no batch left).
NO_TASKS = {"total": 0, "cost": ZERO, "provisional": ZERO, "completed": 0, "failed": 0, "unknown": 0}


def tasks_final(row: dict) -> bool:
    """A sent run's tasks (`batch_task_counts`) are all completed or failed, or it has none: nothing in it
    can change, so it is done, whether or not a tick has written it yet."""
    return row["completed"] + row["failed"] >= row["total"]


def runs_refresh(*, now: datetime | None = None) -> int:
    """Bring sent runs' counts and cost up to date; a run whose tasks are all final is done (one whose batch
    has no task too: nothing in it can change), and one with failed tasks, or tasks unknown for
    UNKNOWN_ALERT_AFTER, raises its alert once. Returns runs finished.

    The newest RECENT_REFRESH_LIMIT sent runs of the last REFRESH_WINDOW are read every tick. Any other
    still sent waits on a lost reply (or a result) that a callback, tasks_ready, an admin or the 31-day
    settlement may still bring, or on its turn: at most LATE_REFRESH_LIMIT of those a tick, each read again
    LATE_REFRESH_EVERY after the last time (the `monitor_run_refreshed` index, the longest unread first),
    so runs waiting for weeks never take a tick's share from the new ones, and none is left unread.
    """
    now = now or timezone.now()
    sent = MonitorRun.objects.filter(state=MonitorRun.State.SENT).select_related("monitor")
    runs = list(
        sent.filter(created_at__gte=now - REFRESH_WINDOW).order_by("-created_at")[:RECENT_REFRESH_LIMIT]
    )
    # Older than the tick's share: the week's oldest past it too, when the share is full.
    older = runs[-1].created_at if len(runs) == RECENT_REFRESH_LIMIT else now - REFRESH_WINDOW
    late = list(
        sent.filter(created_at__lt=older, refreshed_at__lte=now - LATE_REFRESH_EVERY).order_by(
            "refreshed_at"
        )[:LATE_REFRESH_LIMIT]
    )
    if late:  # read now, whatever they show: the next turn of each is LATE_REFRESH_EVERY away
        MonitorRun.objects.filter(pk__in=[run.pk for run in late]).update(refreshed_at=now)
    runs += late
    if not runs:
        return 0
    counts = batch_task_counts(runs)
    return sum(_run_refresh(run, counts.get(run.batch_id, NO_TASKS), now=now) for run in runs)


def _run_refresh(run: MonitorRun, row: dict, *, now: datetime) -> bool:
    """Write what a sent run's tasks count (`row`, from `batch_task_counts`), done once they are all final
    (with its alerts), into `run` and its row unless another process finished it first: whether it is
    done now."""
    before = (run.completed_count, run.failed_count, run.unknown_count, run.cost)
    run.completed_count, run.failed_count = row["completed"], row["failed"]
    run.unknown_count, run.cost = row["unknown"], row["cost"] or ZERO
    fields = ["completed_count", "failed_count", "unknown_count", "cost"]
    changed = before != (run.completed_count, run.failed_count, run.unknown_count, run.cost)
    if tasks_final(row):
        run.state, run.finished_at = MonitorRun.State.DONE, now
        fields += ["state", "finished_at"]
        if row["failed"]:
            alert_raise(
                key=f"run:{run.pk}:failed-tasks",
                kind=Alert.Kind.RUN_FAILED,
                message=f"{run.monitor.name}: {row['failed']} of {row['total']} "
                f"task{pluralize(row['total'])} of the run of "
                f"{slot_label(run.slot, run.monitor.time_zone)} failed.",
                monitor=run.monitor,
                run=run,
            )
    if row["unknown"] and now - run.created_at >= UNKNOWN_ALERT_AFTER:
        alert_raise(
            key=f"run:{run.pk}:unknown",
            kind=Alert.Kind.TASKS_UNKNOWN,
            message=f"{run.monitor.name}: {row['unknown']} task{pluralize(row['unknown'])} of the run of "
            f"{slot_label(run.slot, run.monitor.time_zone)} "
            + (
                "is unknown (its reply was lost; it may have been charged and is never resent)."
                if row["unknown"] == 1
                else "are unknown (their reply was lost; they may have been charged and are never resent)."
            ),
            monitor=run.monitor,
            run=run,
        )
    if changed or "state" in fields:  # most ticks change nothing: no write
        MonitorRun.objects.filter(pk=run.pk, state=MonitorRun.State.SENT).update(
            refreshed_at=now, **{name: getattr(run, name) for name in fields}
        )
    return "state" in fields
