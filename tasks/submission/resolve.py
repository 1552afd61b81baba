"""Admins resolving a task whose reply was lost, by hand: by its upstream id (checked with task_get), or
as never charged. Both are audited (docs/task-lifecycle.md, "Reconciling lost replies")."""

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from tasks.crypto import CredentialKeyError
from tasks.models import Task, TaskEvent
from tasks.spend.rollup import rollup_reopen
from tasks.submission.collection import task_apply_outcome
from tasks.submission.reconcile import (
    ReconcileRefused,
    echo_disagreement,
    upstream_id_is_valid,
    upstream_id_record,
)
from tasks.team.audit import audit_record
from tasks.upstream.clients import client_for
from tasks.upstream.outcomes import StatusClass, UpstreamError


def task_resolve_by_upstream_id(*, task_id, upstream_task_id: str, actor, reason: str) -> Task:
    """An admin has the upstream id of a task whose reply was lost: ask task_get about it, and if its
    echo is this task's request, record it and apply what task_get said (a finished task completes with
    its result and final cost; a pending one is collected). Audited.

    Raises ReconcileRefused with a message for the form's field when the id is not an upstream id, is
    another task's, cannot be found upstream, is about another request, or the upstream cannot be asked
    now; nothing is changed then.
    """
    upstream_task_id = (upstream_task_id or "").strip()
    task = Task.objects.select_related("credential").get(pk=task_id)
    if task.status != Task.Status.UNKNOWN:
        raise ReconcileRefused("Only a task whose reply was lost can be resolved by hand.")
    if not upstream_id_is_valid(upstream_task_id):
        raise ReconcileRefused("That is not an upstream task id (letters, digits, “-” and “_”).")
    other = Task.objects.filter(upstream_task_id=upstream_task_id).exclude(pk=task.pk).first()
    if other is not None:
        raise ReconcileRefused(f"The upstream id {upstream_task_id} belongs to another task ({other.pk}).")
    try:
        with client_for(task.credential) as client:
            outcome = client.task_get(task.provider, upstream_task_id)
    except (UpstreamError, CredentialKeyError) as exc:
        raise ReconcileRefused(f"The upstream could not be asked about it now: {exc}") from None
    if outcome.status_class == StatusClass.NOT_FOUND:
        raise ReconcileRefused(
            f"The upstream has no task {upstream_task_id} for this credential ({outcome.status_message})."
        )
    disagreement = echo_disagreement(task, outcome.data)
    if disagreement:
        raise ReconcileRefused(
            f"The upstream task {upstream_task_id} is about another request: {disagreement}"
        )
    with transaction.atomic():
        upstream_id_record(task_id=task.pk, upstream_task_id=upstream_task_id, how="admin", actor=actor)
        audit_record(
            actor=actor,
            action="task.resolve_upstream_id",
            obj=task,
            changes={"upstream_task_id": upstream_task_id, "status": {"from": task.status}, "reason": reason},
        )
    task.refresh_from_db()
    if outcome.status_class in (StatusClass.DONE, StatusClass.PENDING):
        task_apply_outcome(task=task, outcome=outcome, source=TaskEvent.Kind.POLLED)
        task.refresh_from_db()
    return task


def task_mark_never_charged(*, task_id, actor, reason: str) -> Task:
    """An admin knows a task whose reply was lost was never accepted (the account shows no charge): it
    fails, and its spend is final at zero. Audited. Raises ReconcileRefused if it is no longer unknown."""
    now = timezone.now()
    task = Task.objects.get(pk=task_id)
    with transaction.atomic():
        updated = Task.objects.filter(pk=task.pk, status=Task.Status.UNKNOWN).update(
            status=Task.Status.FAILED,
            status_message="Marked as never charged by an admin.",
            charged=Decimal("0"),
            spend=Decimal("0"),
            spend_is_final=True,
            completed_at=now,
            next_poll_at=None,
        )
        if not updated:
            raise ReconcileRefused("Only a task whose reply was lost can be marked as never charged.")
        rollup_reopen(created_at=task.created_at)
        TaskEvent.objects.create(
            task=task,
            kind=TaskEvent.Kind.FAILED,
            message=f"Marked as never charged: {reason}",
            cost_change=-task.spend,
            actor=actor if getattr(actor, "pk", None) else None,
        )
        audit_record(
            actor=actor,
            action="task.mark_never_charged",
            obj=task,
            changes={
                "status": {"from": task.status, "to": Task.Status.FAILED},
                "spend": {"from": task.spend, "to": Decimal("0")},
                "reason": reason,
            },
        )
    task.refresh_from_db()
    return task
