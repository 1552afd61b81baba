"""Provisional spend: the settlement rule that makes it final once nothing more can be learned about a
task, and what is still provisional, and why, for the spend page (docs/spend.md, "Provisional spend")."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from tasks.history.selectors import being_sent_q
from tasks.models import Task, TaskEvent
from tasks.spend.rollup import rollup_reopen
from tasks.submission.bulk import insert_rows

# Results are kept 30 days after posting (api-reference §1); after that nothing can be learned about a task,
# so its provisional spend is settled. A day's margin covers the time between creating and posting.
RESULTS_KEPT = timedelta(days=30)
SETTLE_AFTER = RESULTS_KEPT + timedelta(days=1)
SETTLE_CHUNK = 1000


SETTLE_MESSAGES = {
    Task.Status.UNKNOWN: (
        "Never reconciled within 30 days of sending, after which the upstream keeps no result: settled as "
        "charged at the estimate."
    ),
    Task.Status.SUBMITTED: "No result within 30 days of sending: settled at the charge at post.",
    Task.Status.PENDING: "No result within 30 days of sending: settled at the charge at post.",
    Task.Status.FAILED: "Failed after it was accepted; settled at the charge at post after 30 days.",
}


def provisional_settle(*, now: datetime | None = None) -> int:
    """Apply the settlement rule (docs/spend.md, "Provisional spend"): a task whose spend is still
    provisional SETTLE_AFTER after it was created can no longer be learned about upstream (results are kept
    30 days), so its spend becomes final at what it carries: the charge at post, or, for a task whose reply
    was lost, the estimate, counted as charged. One that never got a result becomes `failed`. Conditional
    updates: safe to run twice and beside a collection. Returns how many tasks were settled."""
    now = now or timezone.now()
    cutoff = now - SETTLE_AFTER
    settled = 0
    for status, message in SETTLE_MESSAGES.items():
        while True:
            pks = list(
                Task.objects.filter(status=status, spend_is_final=False, created_at__lt=cutoff).values_list(
                    "pk", flat=True
                )[:SETTLE_CHUNK]
            )
            if not pks:
                break
            with transaction.atomic():
                fields = {"spend_is_final": True, "next_poll_at": None}
                if status != Task.Status.FAILED:
                    fields.update(status=Task.Status.FAILED, status_message=message, completed_at=now)
                chosen = Task.objects.filter(pk__in=pks, status=status, spend_is_final=False)
                done = list(chosen.select_for_update().values_list("pk", flat=True))
                Task.objects.filter(pk__in=done).update(**fields)
                oldest = (
                    Task.objects.filter(pk__in=done)
                    .order_by("created_at")
                    .values_list("created_at", flat=True)
                )
                if done:
                    rollup_reopen(created_at=oldest[0])
                insert_rows(
                    TaskEvent,
                    [{"task_id": pk} for pk in done],
                    same={"kind": TaskEvent.Kind.SETTLED, "message": message, "cost_change": Decimal("0")},
                )
            settled += len(done)
            if len(pks) < SETTLE_CHUNK:
                break
    return settled


# --- What is still provisional (the spend page) --------------------------------------------------

PROVISIONAL_REASONS = {
    Task.Status.QUEUED: "waiting to be sent",
    Task.Status.SENDING: "being sent",  # a live request in flight, or a queued task whose chunk is sent
    Task.Status.SUBMITTED: "accepted, waiting for the result and its final cost",
    Task.Status.PENDING: "accepted, waiting for the result and its final cost",
    Task.Status.UNKNOWN: "reply lost: waiting for reconciliation (a callback, tasks_ready or an admin)",
    Task.Status.FAILED: "failed after it was accepted: settled 30 days after sending",
}


@dataclass
class ProvisionalGroup:
    status: str
    reason: str
    amount: Decimal
    count: int
    url: str = ""  # the tasks behind it, set by the page


@dataclass
class ProvisionalSummary:
    amount: Decimal
    count: int
    groups: list[ProvisionalGroup]
    settle_after_days: int = SETTLE_AFTER.days
    url: str = ""


def provisional_summary() -> ProvisionalSummary:
    """How much spend is not final yet, across all time, by status, with the reason it is not."""
    # COUNT(*), not of a column: on PostgreSQL the covering task_provisional index answers alone.
    rows = (
        Task.objects.filter(spend_is_final=False)
        .values("status")
        .annotate(amount=Sum("spend"), count=Count("*"))
        .order_by("status")
    )
    groups = {
        row["status"]: ProvisionalGroup(
            status=row["status"],
            reason=PROVISIONAL_REASONS.get(row["status"], "not final yet"),
            amount=row["amount"] or Decimal("0"),
            count=row["count"],
        )
        for row in rows
    }
    if Task.Status.QUEUED in groups:
        _move_being_sent(groups)
    groups = [group for group in groups.values() if group.count]
    groups.sort(key=lambda group: -group.amount)
    return ProvisionalSummary(
        amount=sum((group.amount for group in groups), Decimal("0")),
        count=sum(group.count for group in groups),
        groups=groups,
    )


def _move_being_sent(groups: dict[str, ProvisionalGroup]) -> None:
    """The queued tasks a worker is sending read "Sending" in the task list, whose status filter goes by
    what the rows show (history.selectors.status_shown_q): they count under "being sent", so each
    reason's figure is the number of tasks its link lists. One query over the few chunks being sent."""
    found = Task.objects.filter(being_sent_q(), spend_is_final=False).aggregate(
        amount=Sum("spend"), count=Count("*")
    )
    if not found["count"]:
        return
    amount = found["amount"] or Decimal("0")
    queued = groups[Task.Status.QUEUED]
    queued.amount -= amount
    queued.count -= found["count"]
    sending = groups.setdefault(
        Task.Status.SENDING,
        ProvisionalGroup(
            status=Task.Status.SENDING,
            reason=PROVISIONAL_REASONS[Task.Status.SENDING],
            amount=Decimal("0"),
            count=0,
        ),
    )
    sending.amount += amount
    sending.count += found["count"]
