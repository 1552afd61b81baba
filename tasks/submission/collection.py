"""Collection: polling submitted tasks with task_get and recording what the upstream says about them."""

import logging
import math
from collections import defaultdict
from contextlib import suppress
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import DataError, IntegrityError, transaction
from django.tasks import task
from django.utils import timezone

from tasks.crypto import CredentialKeyError
from tasks.models import Task, TaskEvent
from tasks.upstream.clients import TASK_POST_CHUNK, client_for
from tasks.upstream.outcomes import StatusClass, TaskOutcome, UpstreamError
from tasks.upstream.providers import LIVE_BASE_FEE, QUEUED_BASE_FEE, QUEUED_PREPAYMENT
from tasks.upstream.results import MONEY_MAX, parse_result, storable_json, storable_text
from tasks.upstream.session import BACKOFF_FACTOR, CONNECT_RETRIES, MAX_RATE_LIMIT_WAIT, RATE_LIMIT_RETRIES
from tasks.visibility.mentions import mentions_for_task

# Polling schedule for task_get: quick at first, then every few minutes; the upstream itself gives
# a queued task up to 72 hours.
POLL_DELAYS = (5, 10, 20, 30, 60, 120, 300, 600, 900)


logger = logging.getLogger(__name__)

GIVE_UP_AFTER = timedelta(hours=72)


# Tasks collected together by one job (the ids of one task_post chunk).
COLLECT_GROUP = TASK_POST_CHUNK


def task_apply_outcome(*, task: Task, outcome: TaskOutcome, source: str) -> bool:
    """Record what the upstream said about a task (task_get, live or postback). Returns True when the
    task reached a final state just now. Finishing is a conditional update, so a duplicate delivery
    or two jobs racing record the result once.

    Never raises on what the upstream sent (docs/task-lifecycle.md, "Results that cannot be read"): a
    finished result whose fields cannot be read is recorded with what could be read, and an error event
    names the rest; one that the database still refuses fails the task, with the reason. A database that
    cannot be reached is not the upstream's doing: that error is raised, and the poll is tried again.
    """
    try:
        with transaction.atomic():
            return _apply_outcome(task, outcome, source)
    except (DataError, IntegrityError, ValueError, TypeError, ArithmeticError, RecursionError) as exc:
        logger.warning("The outcome of task %s could not be stored (%s).", task.pk, type(exc).__name__)
        return _fail_uncollectable(
            task,
            f"The upstream's answer for this task could not be stored ({type(exc).__name__}); "
            "the task was not collected.",
            status_code=_storable_code(outcome.status_code),
        )


def _storable_code(code) -> int | None:
    """A status code that fits the database's integer column, else None."""
    return code if isinstance(code, int) and not isinstance(code, bool) and 0 <= code <= 2**31 - 1 else None


def _apply_outcome(task: Task, outcome: TaskOutcome, source: str) -> bool:
    now = timezone.now()
    code = _storable_code(outcome.status_code)
    message = storable_text(outcome.status_message if isinstance(outcome.status_message, str) else "")
    if outcome.status_class == StatusClass.DONE:
        parsed = parse_result(outcome.result)
        problems = list(dict.fromkeys(parsed.problems))  # each once, in the order met
        cost = _final_cost(task, outcome, parsed.money_spent)
        if not (cost.is_finite() and 0 <= cost < MONEY_MAX):
            raise ValueError("the cost does not fit the money columns")  # SQLite would store it anyway
        if parsed.money_unreadable and not outcome.cost:
            cost = task.charged if task.charged is not None else task.spend
            problems.append(f"the final cost is unknown, so the ${cost:.6f} charged at post stands")
        finished = Task.objects.filter(pk=task.pk, status__in=(*Task.ACTIVE_STATUSES, Task.Status.UNKNOWN))
        updated = finished.update(
            status=Task.Status.COMPLETED,
            status_code=code,
            status_message=message,
            cost=cost,
            spend=cost,
            spend_is_final=True,
            money_spent=parsed.money_spent,
            resolved_model_name=parsed.resolved_model_name,
            input_tokens=parsed.input_tokens,
            output_tokens=parsed.output_tokens,
            reasoning_tokens=parsed.reasoning_tokens,
            web_search_used=parsed.web_search_used,
            result=storable_json(outcome.raw),
            answer_text=parsed.answer_text,
            reasoning_text=parsed.reasoning_text,
            citations=parsed.citations,
            fan_out_queries=parsed.fan_out_queries,
            completed_at=now,
            next_poll_at=None,
        )
        if not updated:
            return False
        before = task.charged if task.charged is not None else task.spend
        TaskEvent.objects.create(task=task, kind=source, status_code=code, message=message)
        if problems:
            shown = "; ".join(problems[:10]) + ("; …" if len(problems) > 10 else "")
            TaskEvent.objects.create(
                task=task,
                kind=TaskEvent.Kind.ERROR,
                status_code=code,
                message=f"Parts of the result could not be read and were left empty: {shown}.",
            )
        TaskEvent.objects.create(
            task=task,
            kind=TaskEvent.Kind.COMPLETED,
            status_code=code,
            message=f"Final cost ${cost:.6f} (money_spent ${parsed.money_spent or 0:.6f}).",
            cost_change=cost - (before or Decimal("0")),
        )
        mentions_for_task(task_id=task.pk)  # visibility: extracted once, in this transaction
        return True

    if outcome.status_class == StatusClass.PENDING:
        Task.objects.filter(pk=task.pk, status__in=Task.ACTIVE_STATUSES).update(
            status=Task.Status.PENDING, status_code=code, status_message=message
        )
        TaskEvent.objects.create(task=task, kind=source, status_code=code, message=message)
        return False

    if outcome.status_class in (StatusClass.NOT_FOUND, StatusClass.INVALID):
        updated = Task.objects.filter(pk=task.pk, status__in=Task.ACTIVE_STATUSES).update(
            status=Task.Status.FAILED,
            status_code=code,
            status_message=message,
            completed_at=now,
            next_poll_at=None,
        )
        if updated:
            TaskEvent.objects.create(task=task, kind=TaskEvent.Kind.FAILED, status_code=code, message=message)
        return bool(updated)

    # Transient or account problems: keep the task where it is and try again later.
    TaskEvent.objects.create(task=task, kind=TaskEvent.Kind.ERROR, status_code=code, message=message)
    return False


def _fail_uncollectable(task: Task, message: str, *, status_code: int | None = None) -> bool:
    """A task the product can never collect: failed with the reason; its spend (the charge at post) is
    final. Returns True when it was still waiting."""
    with transaction.atomic():
        updated = Task.objects.filter(
            pk=task.pk, status__in=(*Task.ACTIVE_STATUSES, Task.Status.UNKNOWN)
        ).update(
            status=Task.Status.FAILED,
            status_code=status_code,
            status_message=message,
            spend_is_final=True,
            completed_at=timezone.now(),
            next_poll_at=None,
        )
        if updated:
            TaskEvent.objects.create(
                task=task, kind=TaskEvent.Kind.ERROR, status_code=status_code, message=message
            )
    return bool(updated)


def _final_cost(task: Task, outcome: TaskOutcome, money_spent: Decimal | None) -> Decimal:
    """The task's real cost: what the upstream reports for it, else base fee (live or queued) + money_spent
    (§6)."""
    if outcome.cost:
        return outcome.cost
    if task.mode == Task.Mode.LIVE:
        return task.charged or LIVE_BASE_FEE + (money_spent or Decimal("0"))
    base = QUEUED_BASE_FEE
    if task.charged is not None and task.charged >= QUEUED_PREPAYMENT:
        base = task.charged - QUEUED_PREPAYMENT
    return base + (money_spent or Decimal("0"))


def task_fetch(
    *, task_id, source: str = TaskEvent.Kind.POLLED, actor=None, clients: dict | None = None
) -> Task:
    """One task_get for a task (free), recorded as an event; used by polls, pingbacks and 'refresh now'.

    `clients` (credential id -> client) lets a polling round reuse one HTTP session per credential.
    An upstream that cannot be reached or answers garbage is an error event (the task is polled again);
    an upstream id that task_get cannot be asked about fails the task, with the reason.
    """
    task = Task.objects.select_related("credential").get(pk=task_id)
    if not task.upstream_task_id or task.is_final:
        return task
    asking = False
    try:
        if clients is None:
            client = client_for(task.credential)
        elif task.credential_id in clients:
            client = clients[task.credential_id]
        else:
            client = clients[task.credential_id] = client_for(task.credential)
        asking = True
        outcome = client.task_get(task.provider, task.upstream_task_id)
    except (UpstreamError, CredentialKeyError, ValueError) as exc:
        if isinstance(exc, ValueError) and asking:  # the client refuses the id: not an upstream task id
            _fail_uncollectable(
                task,
                "The upstream gave this task an id that task_get cannot be asked about; "
                "it cannot be collected.",
            )
            task.refresh_from_db()
            return task
        # Unreachable, garbage, or a credential that cannot make a client (its messages hold no secret).
        TaskEvent.objects.create(
            task=task,
            kind=TaskEvent.Kind.ERROR,
            status_code=getattr(exc, "status_code", None),
            message=f"task_get failed: {exc}",
            actor=actor,
        )
        return task
    if outcome.id and outcome.id != task.upstream_task_id:
        TaskEvent.objects.create(
            task=task, kind=TaskEvent.Kind.ERROR, message="task_get answered for another task id; ignored."
        )
        return task
    task_apply_outcome(task=task, outcome=outcome, source=source)
    task.refresh_from_db()
    return task


def tasks_poll(*, task_ids: list[str]) -> None:
    """One scheduled poll of a collection chain (the tasks of one task_post chunk): fetch each task
    that is due, then schedule the next poll for those still waiting, unless all are final.

    Safe to run twice, and beside another chain for the same tasks (a chain resume_collection re-armed
    while the old one still ran): each poll claims its task's slot with a conditional update of
    `poll_count`, and holds it (`next_poll_at` set past the longest a task_get can take, `poll_lease`)
    until its fetch is recorded, so no other chain polls that task meanwhile; a chain that finds the slot
    taken or not yet due drops the task, and one chain goes on. Tasks whose next polls fall at different
    times go on in one chain per delay.

    One task never stops the others: an unexpected error while polling it is logged and recorded as an
    error event, and that task stays in the chain (while it is still waiting).
    """
    waiting: dict[int, list[str]] = defaultdict(list)  # delay -> the tasks to poll again after it
    clients: dict = {}
    try:
        for task_id in task_ids:
            try:
                delay = _poll_one(task_id, clients=clients)
            except Exception:  # the database, most likely: try again once any hold on the task has run out
                logger.exception("Polling task %s failed; it is polled again if it still waits.", task_id)
                delay = math.ceil(poll_lease().total_seconds()) if _still_waiting(task_id) else None
            if delay is not None:
                waiting[delay].append(str(task_id))
    finally:
        for client in clients.values():
            with suppress(Exception):
                client.close()
    for delay, ids in waiting.items():
        schedule_collect(ids, delay=delay)


def poll_lease() -> timedelta:
    """The longest one task_get can take (connect attempts and their backoff, the read timeout, waits for
    rate limits), plus a margin: how long a poll holds its task's slot at most. COLLECT_LEASE_SECONDS
    overrides it (tests)."""
    if getattr(settings, "COLLECT_LEASE_SECONDS", None):
        return timedelta(seconds=settings.COLLECT_LEASE_SECONDS)
    connect = settings.UPSTREAM_CONNECT_TIMEOUT * (CONNECT_RETRIES + 1) + BACKOFF_FACTOR * 2**CONNECT_RETRIES
    waits = MAX_RATE_LIMIT_WAIT * RATE_LIMIT_RETRIES
    return timedelta(seconds=connect + settings.UPSTREAM_READ_TIMEOUT + waits + 60)


def _still_waiting(task_id) -> bool:
    try:
        return Task.objects.filter(
            pk=task_id, status__in=Task.ACTIVE_STATUSES, upstream_task_id__isnull=False
        ).exists()
    except Exception:  # not a task id, or no database: nothing to poll again
        return False


def _poll_one(task_id, *, clients: dict) -> int | None:
    """Poll one task if it is this chain's turn; return the delay before its next poll, or None when
    the task is final, gone, given up on, or polled by another chain."""
    task = Task.objects.filter(pk=task_id).first()
    if task is None or task.is_final or not task.upstream_task_id:
        return None
    now = timezone.now()
    if task.next_poll_at and task.next_poll_at > now + timedelta(seconds=1):
        return None  # not this chain's turn: another poll is scheduled later, or one is in flight
    delay = POLL_DELAYS[min(task.poll_count + 1, len(POLL_DELAYS) - 1)]
    claimed_count = task.poll_count + 1
    claimed = Task.objects.filter(pk=task.pk, poll_count=task.poll_count).update(
        poll_count=claimed_count, next_poll_at=now + poll_lease()
    )
    if not claimed:
        return None
    try:
        task = task_fetch(task_id=task.pk, clients=clients)
        final = task.is_final
    except Exception as exc:
        logger.exception("Polling task %s failed unexpectedly.", task.pk)
        with suppress(Exception):
            TaskEvent.objects.create(
                task_id=task.pk,
                kind=TaskEvent.Kind.ERROR,
                message=f"The poll failed unexpectedly ({type(exc).__name__}); the task is polled again.",
            )
        final = False
    finally:
        # The fetch is recorded: release the slot, due again after `delay` (unless another chain took it
        # over, its hold having run out).
        Task.objects.filter(pk=task.pk, poll_count=claimed_count, status__in=Task.ACTIVE_STATUSES).update(
            next_poll_at=timezone.now() + timedelta(seconds=delay)
        )
    if final or _task_give_up(task, now=now):
        return None
    return delay


def _task_give_up(task: Task, *, now) -> bool:
    """After a poll that found no result: fail a task sent more than 72 hours ago (the upstream gives up on
    queued tasks then). Only once the upstream answered that poll (`now`: when it started): a result
    finished while nothing polled (workers down, the upstream unreachable) stays upstream for 30 days,
    paid for, and that poll collected it, or a later one will."""
    if not task.submitted_at or now - task.submitted_at <= GIVE_UP_AFTER:
        return False
    if not task.events.filter(kind=TaskEvent.Kind.POLLED, created_at__gte=now).exists():
        return False  # the upstream was not reached: ask again
    updated = Task.objects.filter(pk=task.pk, status__in=Task.ACTIVE_STATUSES).update(
        status=Task.Status.FAILED,
        status_message="No result after 72 hours; the upstream gives up on queued tasks then.",
        completed_at=timezone.now(),
        next_poll_at=None,
    )
    if updated:
        TaskEvent.objects.create(
            task=task, kind=TaskEvent.Kind.FAILED, message="Gave up after 72 hours without a result."
        )
    return True


# --- Jobs (django.tasks): they take ids and are safe to run twice -----------------------------------


@task
def collect_results(task_ids: list[str]) -> None:
    """One poll of submitted tasks (one task_post chunk); schedules the next until all are final."""
    tasks_poll(task_ids=task_ids)


@task
def fetch_after_callback(task_id: str) -> None:
    """A pingback arrived: one task_get with the upstream id we stored (never the one in the URL)."""
    task_fetch(task_id=task_id, source=TaskEvent.Kind.CALLBACK)


def schedule_collect(task_ids: list[str], *, delay: float) -> None:
    collect_results.using(run_after=timezone.now() + timedelta(seconds=delay)).enqueue(task_ids)
