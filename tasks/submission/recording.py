"""Recording what became of a chunk's tasks: the outcomes task_post (or live) answered, tasks never sent
or whose reply was lost (the task writes of tasks/submission/replies.py and of the sweep in chunks.py; the
caller owns the transaction)."""

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone

from tasks.models import Task, TaskEvent
from tasks.submission.bulk import insert_rows, update_rows
from tasks.submission.collection import POLL_DELAYS, schedule_collect, task_apply_outcome
from tasks.templatetags.spend_format import money_exact
from tasks.upstream.outcomes import StatusClass, TaskOutcome
from tasks.upstream.results import storable_text

# A task task_post (or live) refused with a temporary code (api-reference §4: 50000, 50001, 503xx, 40101,
# 40202), nothing charged, is sent again in a new chunk; at most this many sends in all, then it fails.
RESEND_ATTEMPTS = 3
RESEND_KEY = "resend_attempt"  # in the data of the event that plans a resend: the number of the next send
# What task_post may answer for a task it took (and may have charged): created (20100), or already handed
# over, in queue (40601, 40602) or done (20000). Each is collected by its id, never failed at post.
ACCEPTED_AT_POST = frozenset({StatusClass.CREATED, StatusClass.PENDING, StatusClass.DONE})
# Times a chunk's answers are written when another transaction keeps giving one of their ids to another task.
ID_RACE_ATTEMPTS = 3

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Resend:
    """A task task_post refused with a temporary code: to be sent again (tasks/submission/replies.py)."""

    pk: uuid.UUID
    outcome: TaskOutcome
    attempt: int  # the send that was refused (1: the first)


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


def tasks_fail_unsent(*, tasks: list, message: str) -> None:
    """Tasks certainly never accepted (refused as a whole, or never sent): failed, spend 0 and final."""
    if not tasks:
        return
    with transaction.atomic():
        Task.objects.filter(pk__in=[task.pk for task in tasks]).update(**_not_sent(message))
        _add_events(tasks, kind=TaskEvent.Kind.ERROR, message=message)


def tasks_mark_unknown(*, tasks: list, message: str) -> None:
    """Tasks whose POST may have been accepted and charged but whose reply was not recorded: unknown,
    never sent again; their spend stays the estimate, provisional."""
    if not tasks:
        return
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


def whole_refusal_message(reply: Exception, *, send: int, at=None, sends: int = 0) -> str:
    """What a task's timeline says when its whole task_post (or live call) was refused with a temporary
    code, nothing accepted: when it is sent again (`at`: the send after `send`, of `sends`), or, `at`
    None, that it fails as not sent after `send` attempts."""
    said = str(reply).strip()
    if at is None:
        return (
            f"Not sent: {said} The upstream refused the whole request with a temporary error; after {send} "
            "attempts it is not sent again."
        )
    when = timezone.localtime(at).strftime("%H:%M")
    return (
        f"{said} Nothing was accepted or charged; it will be sent again at {when} "
        f"(attempt {send + 1} of {sends})."
    )


def tasks_refused_whole_for_now(*, chunk_id, reply, at, send: int, sends: int) -> None:
    """The tasks of a chunk whose `send`-th POST (of at most `sends`) was refused as a whole with a
    temporary code (`reply`, an UpstreamRejected; nothing accepted), the chunk planned again from `at`:
    queued (a live one was `sending`; unknown if the sweep took the chunk while the reply was on its way:
    the reply wins), the refusal and the next send their status and an error event. The caller owns the
    transaction."""
    message = whole_refusal_message(reply, send=send, at=at, sends=sends)
    status_code = reply.status_code
    waiting = Task.objects.filter(
        chunk_id=chunk_id, status__in=(Task.Status.QUEUED, Task.Status.SENDING, Task.Status.UNKNOWN)
    )
    pks = list(waiting.values_list("pk", flat=True))
    _queued_again(pks, status_code=status_code, message=message, data={"not_before": at.isoformat()})


def _queued_again(pks: list, *, status_code: int | None, message: str, data: dict, **fields) -> None:
    """Tasks `pks` queued again (with `fields`), the refusal and the next send their status and an error
    event."""
    Task.objects.filter(pk__in=pks).update(
        status=Task.Status.QUEUED, status_code=status_code, status_message=message, **fields
    )
    insert_rows(
        TaskEvent,
        [{"task_id": pk} for pk in pks],
        same={"kind": TaskEvent.Kind.ERROR, "status_code": status_code, "message": message, "data": data},
    )


def tasks_mark_interrupted(*, tasks: list[Task]) -> None:
    """Tasks left `queued` outside any chunk by a process that stopped while sending them (before
    chunks existed): they may have been accepted."""
    tasks_mark_unknown(
        tasks=tasks,
        message="The submission was interrupted after this task was saved and before the upstream's answer "
        "was recorded. It may have been accepted and charged, so it was not sent again.",
    )


def _refused_for_now(outcome: TaskOutcome) -> bool:
    """A temporary refusal (50000, 40202, ...) that charged nothing: the task can be sent again. One
    that reports a charge is recorded as it is, never resent."""
    return outcome.status_class == StatusClass.TRANSIENT and not outcome.cost


def _sends_refused(pks: list) -> dict:
    """How many times each task was already refused with a temporary code (its resend events)."""
    counted = (
        TaskEvent.objects.filter(task_id__in=pks, kind=TaskEvent.Kind.ERROR, data__has_key=RESEND_KEY)
        .values("task_id")
        .annotate(n=Count("id"))
    )
    return {row["task_id"]: row["n"] for row in counted}


def _tried(outcome: TaskOutcome, sends: int) -> str:
    said = outcome.status_message.strip() or f"Status {outcome.status_code}."
    return (
        f"{said} Sent {sends} times, each time refused by the upstream with a temporary error "
        f"({outcome.status_code}); not sent again."
    )


def tasks_record_post_outcomes(*, tasks: list, outcomes: list[TaskOutcome]) -> list[Resend]:
    """Record what task_post answered for each task of a chunk and schedule the collection of the
    accepted ones; the caller owns the transaction. Returns the tasks refused with a temporary code that
    may be sent again (`Resend`), left for the caller to plan (`tasks_plan_again`); one refused so on
    its RESEND_ATTEMPTS-th send fails, its message saying so. A task given an upstream id another task
    has is recorded without it (`_tasks_record_taken_ids`), so the rest of the chunk is recorded.

    Outcomes repeat (every accepted task of a chunk has the same code, message and charge), so each
    group of equal values is one UPDATE, which also writes the one value that differs per task, its
    upstream id (a row is rewritten once, not once for its status and again for its id), and one INSERT
    of its events, whose shared values are prepared once.
    """
    now = timezone.now()
    # A task a callback has already given its upstream id (its postback may even have completed it) while
    # this reply was on its way is left as the callback recorded it. The lock makes a callback arriving
    # now wait for this transaction, then find the id recorded.
    waiting = set(
        Task.objects.select_for_update()
        .filter(pk__in=[task.pk for task in tasks], upstream_task_id__isnull=True)
        .values_list("pk", flat=True)
    )
    refused = _sends_refused(
        [task.pk for task, outcome in zip(tasks, outcomes, strict=True) if _refused_for_now(outcome)]
    )
    resend: list[Resend] = []
    recorded: list[tuple[uuid.UUID, TaskOutcome, str]] = []
    for task, outcome in zip(tasks, outcomes, strict=True):
        if task.pk not in waiting:
            if outcome.id:  # its charge at post is news, the rest the callback has recorded
                found = Task.objects.filter(pk=task.pk, upstream_task_id=outcome.id)
                found.filter(charged__isnull=True).update(charged=outcome.cost)
                found.filter(spend_is_final=False).update(spend=outcome.cost)
            continue
        message = outcome.status_message
        if _refused_for_now(outcome):
            attempt = refused.get(task.pk, 0) + 1
            if attempt < RESEND_ATTEMPTS:
                resend.append(Resend(task.pk, outcome, attempt))
                continue
            message = _tried(outcome, attempt)
        recorded.append((task.pk, outcome, message))
    accepted = _tasks_record_answers(recorded, now=now)
    if accepted:  # one chunk: one collection job, committed with the outcomes
        schedule_collect(accepted, delay=POLL_DELAYS[0])
    return resend


def _tasks_record_answers(recorded: list[tuple[uuid.UUID, TaskOutcome, str]], *, now) -> list[str]:
    """Write the recorded outcomes of a chunk's tasks; returns the ids of the accepted ones, to collect.

    Who holds each id is read, then the ids are written: another transaction (a callback, tasks_ready, an
    admin's resolve, another worker) may give one of them to another task in between (on PostgreSQL; on
    SQLite this transaction holds the write lock from its start). The writes are then rolled back to a
    savepoint and made again with the holders read again, so that task is recorded without the id, as for
    an id taken before, instead of the whole chunk's outcome failing on the unique id."""
    for _ in range(ID_RACE_ATTEMPTS - 1):
        try:
            with transaction.atomic():
                return _tasks_write_answers(recorded, now=now)
        except IntegrityError:
            logger.warning(
                "An upstream id of a task_post reply was given to another task meanwhile; recording again."
            )
    with transaction.atomic():
        return _tasks_write_answers(recorded, now=now)


def _tasks_write_answers(recorded: list[tuple[uuid.UUID, TaskOutcome, str]], *, now) -> list[str]:
    """One try of `_tasks_record_answers`: the holders of the ids read, then every write."""
    first_poll = now + timedelta(seconds=POLL_DELAYS[0])
    groups: dict[tuple, list[tuple[uuid.UUID, str | None]]] = defaultdict(list)
    # Who has each id the reply gives (the ids are unique): another task already, or a task of this chunk
    # given it first, an accepted one before a refused one (only an accepted one is collected by it). A
    # task given an id someone has is recorded without it (`_tasks_record_taken_ids`).
    holders = dict(
        Task.objects.filter(
            upstream_task_id__in={outcome.id for _, outcome, _ in recorded if outcome.id}
        ).values_list("upstream_task_id", "pk")
    )
    taken: list[_TakenId] = []
    for pk, outcome, message in sorted(
        recorded, key=lambda item: item[1].status_class not in ACCEPTED_AT_POST
    ):
        if outcome.id and holders.setdefault(outcome.id, pk) != pk:
            taken.append(_TakenId(pk, outcome, message, holders[outcome.id]))
            continue
        created = outcome.status_class in ACCEPTED_AT_POST and bool(outcome.id)
        groups[(created, outcome.status_code, message, outcome.cost)].append((pk, outcome.id or None))
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
    _tasks_record_taken_ids(taken, now=now)
    return accepted


@dataclass(frozen=True, slots=True)
class _TakenId:
    """A task task_post answered with an upstream id that `other` already has."""

    pk: uuid.UUID
    outcome: TaskOutcome
    message: str  # what its outcome says (the upstream's message, or the end of its resends)
    other: uuid.UUID


def _taken_id_note(upstream_id: str, other) -> str:
    return (
        f"The upstream answered with the id {upstream_id}, which task {other} already has; the answer is "
        "recorded here without that id."
    )


def _tasks_record_taken_ids(taken: list[_TakenId], *, now) -> None:
    """Tasks task_post answered with an id another task already has: recorded all the same, without it
    (the ids are unique), with an error event naming the other task. One the upstream accepted was paid
    for but cannot be collected by an id it does not have: it fails (never polled, never sent again), its
    charge at post counted, provisional, until the settlement rule makes it final (docs/spend.md). One the
    upstream refused fails as any refused task. Rare: a few writes per task. The caller owns the
    transaction."""
    for item in taken:
        outcome, cost = item.outcome, item.outcome.cost
        accepted = outcome.status_class in ACCEPTED_AT_POST
        fields = {"status_code": outcome.status_code, "charged": cost, "spend": cost, "submitted_at": now}
        if accepted:
            message = (
                f"Accepted by the upstream ({outcome.status_code}) and charged {money_exact(cost)} at post, "
                f"but under the id {outcome.id}, which task {item.other} already has. Without an id of its "
                "own this task cannot be collected, so it has no answer and is not polled; it was not sent "
                "again. Its charge at post is counted until it is settled, 30 days after sending."
            )
            fields.update(status_message=message, next_poll_at=None)
            TaskEvent.objects.create(
                task_id=item.pk,
                kind=TaskEvent.Kind.POSTED,
                status_code=outcome.status_code,
                message=outcome.status_message,
                cost_change=cost or None,
                data={"upstream_task_id": outcome.id},
            )
        else:
            message = item.message
            fields.update(status_message=message, spend_is_final=True)
        Task.objects.filter(pk=item.pk).update(status=Task.Status.FAILED, completed_at=now, **fields)
        TaskEvent.objects.create(
            task_id=item.pk,
            kind=TaskEvent.Kind.ERROR,
            message=_taken_id_note(outcome.id, item.other),
            data={"upstream_task_id": outcome.id, "other_task": str(item.other)},
        )
        TaskEvent.objects.create(
            task_id=item.pk,
            kind=TaskEvent.Kind.FAILED,
            status_code=outcome.status_code,
            message=message,
            cost_change=None if accepted else cost or None,
        )


def tasks_plan_again(*, resend: list[Resend], chunk_id, at) -> None:
    """Tasks refused with a temporary code, now in the planned chunk `chunk_id` (sent from `at`): queued
    again, their estimated spend kept (the budgets still count them), and an event on each saying when
    and which send comes next. The caller owns the transaction."""
    when = timezone.localtime(at).strftime("%H:%M")
    groups: dict[tuple, list[uuid.UUID]] = defaultdict(list)
    for item in resend:
        said = item.outcome.status_message.strip().rstrip(".")
        message = (
            f"The upstream answered {item.outcome.status_code}{' ' + said if said else ''} for this task; it "
            f"will be sent again at {when} (attempt {item.attempt + 1} of {RESEND_ATTEMPTS})."
        )
        groups[(item.outcome.status_code, message, item.attempt + 1)].append(item.pk)
    for (code, message, attempt), pks in groups.items():
        data = {RESEND_KEY: attempt, "not_before": at.isoformat()}
        _queued_again(pks, status_code=code, message=message, data=data, chunk_id=chunk_id)


def tasks_record_outcomes(*, mode: str, tasks: list, outcomes) -> list[Resend]:
    """Record what a chunk's POST answered: task_post's outcomes (one per task), or a live call's one
    outcome (for its one task). Returns the tasks refused for now to send again, left for the caller to
    plan (tasks/submission/replies.py, `_tasks_send_again`); the caller owns the transaction."""
    if mode == Task.Mode.LIVE:
        return task_record_live(task_id=tasks[0].pk, outcome=outcomes)
    return tasks_record_post_outcomes(tasks=tasks, outcomes=outcomes)


def _task_record_live_charge(*, task_id, outcome: TaskOutcome):
    """Give a live task its charge and the id its answer carries; returns the task that already holds that
    id (the task then gets none), or None. The id is written first and the unique id says who holds it:
    reading the holders first would let a callback, tasks_ready or an admin give it to another task in
    between (PostgreSQL), and the write would then fail the whole recording."""
    fields = {"submitted_at": timezone.now(), "charged": outcome.cost, "spend": outcome.cost}
    if outcome.id:
        try:
            with transaction.atomic():
                Task.objects.filter(pk=task_id).update(upstream_task_id=outcome.id, **fields)
            return None
        except IntegrityError:
            pass
    Task.objects.filter(pk=task_id).update(upstream_task_id=None, **fields)
    if not outcome.id:
        return None
    return Task.objects.filter(upstream_task_id=outcome.id).values_list("pk", flat=True).first()


def task_record_live(*, task_id, outcome: TaskOutcome) -> list[Resend]:
    """Record the answer of a live request: its charge, then the result as a poll's would be. A live call
    is answered once: any answer but a result (an invalid field, an account problem, an internal error)
    fails the task with the upstream's message, its charge final.

    But a temporary refusal that charged nothing (50000, 50001, 503xx, 40101, and 40202, the per-minute
    rate limit): nothing was run, so, as for task_post, it is returned as a `Resend` for the caller to plan
    again (`tasks_plan_again`; a 40202 after the credential's rate limit), and fails only when refused so
    on its RESEND_ATTEMPTS-th send, its message saying so. Otherwise returns [].

    An answer whose id another task already has is recorded all the same (it was paid for), without the
    id (the ids are unique), and an error event on the task names the other one."""
    message = storable_text(outcome.status_message) or f"The live request failed ({outcome.status_code})."
    if _refused_for_now(outcome):
        attempt = _sends_refused([task_id]).get(task_id, 0) + 1
        if attempt < RESEND_ATTEMPTS:
            return [Resend(task_id, outcome, attempt)]
        message = storable_text(_tried(outcome, attempt))
    _task_record_live_failed_or_done(task_id=task_id, outcome=outcome, message=message)
    return []


def _task_record_live_failed_or_done(*, task_id, outcome: TaskOutcome, message: str) -> None:
    """A live answer recorded as it is: completed with its result, or failed with `message`."""
    other = _task_record_live_charge(task_id=task_id, outcome=outcome)
    task = Task.objects.get(pk=task_id)
    TaskEvent.objects.create(
        task=task,
        kind=TaskEvent.Kind.POSTED,
        status_code=outcome.status_code,
        message=outcome.status_message,
        cost_change=outcome.cost,
    )
    if other is not None:
        TaskEvent.objects.create(
            task=task,
            kind=TaskEvent.Kind.ERROR,
            message=_taken_id_note(outcome.id, other),
            data={"upstream_task_id": outcome.id, "other_task": str(other)},
        )
    if outcome.status_class == StatusClass.DONE:
        task_apply_outcome(task=task, outcome=outcome, source=TaskEvent.Kind.POLLED)
        return
    failed = Task.objects.filter(pk=task_id, status__in=Task.ACTIVE_STATUSES).update(
        status=Task.Status.FAILED,
        status_code=outcome.status_code,
        status_message=message,
        spend_is_final=True,
        completed_at=timezone.now(),
    )
    if failed:
        TaskEvent.objects.create(
            task=task, kind=TaskEvent.Kind.FAILED, status_code=outcome.status_code, message=message
        )
