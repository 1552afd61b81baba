"""Reads for the batch pages."""

from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.db.models import Count, F, Sum

from tasks.history.rows import shown_status
from tasks.history.selectors import variable_items
from tasks.models import Batch, SendChunk, Task

BATCH_PAGE_SIZE = 50


@dataclass
class BatchRow:
    """One batch of the batch list: its record and what its tasks are now."""

    batch: Batch
    status_counts: dict[str, int] = field(default_factory=dict)
    cost: Decimal = Decimal("0")

    @property
    def finished(self) -> int:
        return sum(self.status_counts.get(status, 0) for status in Task.FINAL_STATUSES)

    @property
    def written(self) -> int:
        return sum(self.status_counts.values())

    @property
    def statuses(self) -> list[tuple[str, str, int]]:
        """(status, label, count) of the statuses its tasks are in, in the lifecycle's order."""
        return [
            (status, label, self.status_counts[status])
            for status, label in Task.Status.choices
            if self.status_counts.get(status)
        ]


def batch_list(*, template_id: int | None = None, page: int = 1) -> tuple[list[BatchRow], bool]:
    """A page of batches, newest first (of one template when given), with each one's task counts by
    status and cost so far; and whether an older page exists. Two queries whatever the number of tasks:
    the batches, and one aggregate of their tasks grouped by batch, status and send chunk state. A queued
    task whose chunk a worker is sending counts as "sending", as its row shows and the task list's status
    filter finds it (tasks.history.selectors.status_shown_q)."""
    batches = Batch.objects.select_related(
        "created_by", "template_version__template", "monitor_run__monitor"
    ).order_by("-created_at", "-id")
    if template_id is not None:
        batches = batches.filter(template_version__template_id=template_id)
    start = (max(page, 1) - 1) * BATCH_PAGE_SIZE
    if start + BATCH_PAGE_SIZE + 1 > connection.ops.integer_field_range("BigIntegerField")[1]:
        return [], False  # a page past any batch whose OFFSET the database cannot take: empty, as others past
    found = list(batches[start : start + BATCH_PAGE_SIZE + 1])
    more = len(found) > BATCH_PAGE_SIZE
    rows = {batch.pk: BatchRow(batch=batch) for batch in found[:BATCH_PAGE_SIZE]}
    if rows:
        groups = (
            Task.objects.filter(batch_id__in=list(rows))
            .values("batch_id", "status", "chunk__state")
            .annotate(n=Count("id"), total=Sum("spend"))
            .order_by()
        )
        for group in groups:
            row = rows[group["batch_id"]]
            status = group["status"]
            if status == Task.Status.QUEUED and group["chunk__state"] == SendChunk.State.SENDING:
                status = Task.Status.SENDING
            row.status_counts[status] = row.status_counts.get(status, 0) + group["n"]
            row.cost += group["total"] or Decimal("0")
    return list(rows.values()), more


def batch_tasks(*, batch: Batch, limit: int) -> list[Task]:
    """The first `limit` tasks of a batch, in the order they were planned, each with its variables in
    the template's order (`variable_items`) and the status its row shows (`shown_status`: "sending" for a
    queued task whose chunk a worker is sending), read with the rows."""
    version = batch.template_version
    fields = version.fields if version is not None else None
    tasks = list(batch.tasks.annotate(chunk_state=F("chunk__state")).order_by("created_at", "id")[:limit])
    for task in tasks:
        task.variable_items = variable_items(task.variables, version_fields=fields)
        task.shown_status = shown_status(task)
    return tasks


def batch_choices(*, selected=None, limit: int = 100) -> list[Batch]:
    """The newest batches for the task list's batch picker, and the selected one if it is older."""
    # Only what the picker's label shows (tasks.history.forms.batch_label): the rows' JSON stays unread.
    chosen = Batch.objects.select_related("template_version__template").only(
        "id",
        "name",
        "created_at",
        "task_count",
        "template_version__number",
        "template_version__template__name",
    )
    batches = list(chosen.order_by("-created_at", "-id")[:limit])
    if selected is not None and all(batch.pk != selected for batch in batches):
        batches += list(chosen.filter(pk=selected))
    return batches
