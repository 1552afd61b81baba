"""Recording what became of a submission's tasks: the outcomes task_post answered, a failed call, tasks
never sent or whose reply was lost (the writes of tasks/submission/sending.py; the caller owns the
transaction)."""

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from tasks.models import Task, TaskEvent
from tasks.submission.bulk import insert_rows, update_rows
from tasks.submission.collection import POLL_DELAYS, schedule_collect
from tasks.upstream.outcomes import StatusClass, TaskOutcome, UpstreamError, UpstreamReplyLost


@dataclass(frozen=True, slots=True)
class _Created:
    """A task row just committed: what sending it and recording its outcome need, without loading it."""

    pk: uuid.UUID
    body: dict


def _not_sent(message: str) -> dict:
    """A task's fields once it is known never to have been sent: failed, and it costs nothing."""
    return {
        "status": Task.Status.FAILED,
        "status_message": message,
        "spend": Decimal("0"),
        "spend_is_final": True,
        "completed_at": timezone.now(),
    }


def _add_events(tasks: list[Task | _Created], **fields) -> None:
    insert_rows(TaskEvent, [{"task_id": task.pk} for task in tasks], same=fields)


def _fail_unsent(tasks: list[Task | _Created], message: str) -> None:
    if not tasks:
        return
    with transaction.atomic():
        Task.objects.filter(pk__in=[task.pk for task in tasks]).update(**_not_sent(message))
        _add_events(tasks, kind=TaskEvent.Kind.ERROR, message=message)


def _mark_unknown(tasks: list[Task | _Created], message: str) -> None:
    with transaction.atomic():
        # Only tasks still without an answer: a callback may have reconciled one meanwhile.
        pks = [task.pk for task in tasks]
        waiting = Task.objects.filter(pk__in=pks, upstream_task_id__isnull=True).exclude(
            status__in=Task.FINAL_STATUSES
        )
        marked = set(waiting.values_list("pk", flat=True))
        Task.objects.filter(pk__in=marked).update(status=Task.Status.UNKNOWN, status_message=message)
        marked_tasks = [task for task in tasks if task.pk in marked]
        _add_events(marked_tasks, kind=TaskEvent.Kind.UNKNOWN, message=message)


def tasks_mark_interrupted(*, tasks: list[Task]) -> None:
    """Tasks left `queued` by a process that stopped while sending them: they may have been accepted."""
    _mark_unknown(
        tasks,
        "The submission was interrupted after this task was saved and before the upstream's answer was "
        "recorded. It may have been accepted and charged, so it was not sent again.",
    )


def _record_post_failure(tasks: list[_Created], exc: BaseException) -> str:
    """Record a chunk whose call failed; return why the tasks after it are not sent."""
    if isinstance(exc, UpstreamReplyLost):
        start, end = exc.lost_range
        _mark_unknown(
            tasks[start:end],
            f"The reply to task_post was lost ({exc}). The upstream may have accepted and charged "
            "this task, so it was not sent again; it can be found upstream by its tag.",
        )
        message = "Not sent: an earlier part of this submission lost its reply."
        _fail_unsent(tasks[end:], message)
        return message
    if isinstance(exc, UpstreamError):
        # This chunk was refused or never arrived (connection refused, rejected credentials, rate
        # limited, …); the chunks before it may have been accepted and charged.
        message = f"Not sent: {exc}"
        _fail_unsent(tasks[len(exc.outcomes_before) :], message)
        return message
    raise exc


def _record_post_outcomes(tasks: list[_Created], outcomes: list[TaskOutcome]) -> None:
    """Record what task_post answered for each task of a chunk and schedule the collection of the
    accepted ones; the caller owns the transaction.

    Outcomes repeat (every accepted task of a chunk has the same code, message and charge), so each
    group of equal values is one UPDATE, which also writes the one value that differs per task, its
    upstream id (a row is rewritten once, not once for its status and again for its id), and one INSERT
    of its events, whose shared values are prepared once.
    """
    now = timezone.now()
    first_poll = now + timedelta(seconds=POLL_DELAYS[0])
    groups: dict[tuple, list[tuple[uuid.UUID, str | None]]] = defaultdict(list)
    for task, outcome in zip(tasks, outcomes, strict=True):
        created = outcome.status_class == StatusClass.CREATED and bool(outcome.id)
        groups[(created, outcome.status_code, outcome.status_message, outcome.cost)].append(
            (task.pk, outcome.id or None)
        )
    accepted = []
    for (created, code, message, cost), pairs in groups.items():
        fields = {
            "status_code": code,
            "status_message": message,
            "charged": cost,
            "spend": cost,
            "submitted_at": now,
        }
        event = {"status_code": code, "message": message, "cost_change": cost or None}
        if created:
            fields.update(status=Task.Status.SUBMITTED, next_poll_at=first_poll)
            events = [{"task_id": pk, "data": {"upstream_task_id": upstream_id}} for pk, upstream_id in pairs]
            event.update(kind=TaskEvent.Kind.POSTED)
            accepted.extend(str(pk) for pk, _ in pairs)
        else:
            fields.update(status=Task.Status.FAILED, spend_is_final=True, completed_at=now)
            events = [{"task_id": pk} for pk, _ in pairs]
            event.update(kind=TaskEvent.Kind.FAILED, data=None)
        update_rows(Task, pairs, each="upstream_task_id", same=fields)
        insert_rows(TaskEvent, events, same=event)
    if accepted:  # one chunk: one collection job, committed with the outcomes
        schedule_collect(accepted, delay=POLL_DELAYS[0])
