"""Where the product's state changes: submitting tasks, collecting their results, callbacks, the catalog.

Sending is built around one rule: a paid POST is never sent twice by accident and never lost track of.
Task rows are committed before the HTTP call; the upstream ids and charges are recorded after it; a
reply that was lost leaves the task `unknown` with an event saying so, and nothing is resent.
"""

import logging
import math
import uuid
from collections import defaultdict
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

from django.conf import settings
from django.core import signing
from django.db import DataError, IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from uuid_utils.compat import uuid7

from tasks import jobs
from tasks.budgets import budget_hold_release, budgets_reserve
from tasks.bulk import insert_rows, update_rows
from tasks.clients import (
    BACKOFF_FACTOR,
    CONNECT_RETRIES,
    MAX_RATE_LIMIT_WAIT,
    RATE_LIMIT_RETRIES,
    TASK_POST_CHUNK,
    LLMResponsesClient,
    StatusClass,
    TaskOutcome,
    UpstreamError,
    UpstreamMalformed,
    parse_task_outcome,
)
from tasks.crypto import CredentialKeyError
from tasks.models import Batch, Credential, ProviderModel, Task, TaskEvent
from tasks.own_callbacks import without_own_callbacks
from tasks.providers import QUEUED_BASE_FEE, QUEUED_PREPAYMENT, queued_charge_per_task
from tasks.results import MONEY_MAX, json_depth_exceeds, parse_result, storable_json, storable_text
from tasks.submission.chunks import chunks_plan_rows

logger = logging.getLogger(__name__)

# Polling schedule for task_get: quick at first, then every few minutes; the upstream itself gives
# a queued task up to 72 hours.
POLL_DELAYS = (5, 10, 20, 30, 60, 120, 300, 600, 900)
GIVE_UP_AFTER = timedelta(hours=72)
CALLBACK_SALT = "tasks.callback"
# Tasks collected together by one job (the ids of one task_post chunk).
COLLECT_GROUP = TASK_POST_CHUNK


class SubmissionError(Exception):
    """A submission that could not be made; the message is meant for the person."""


@dataclass(frozen=True)
class TaskSpec:
    """One task to submit: the upstream task object (api-reference §2) and where it came from."""

    provider: str
    body: dict
    idempotency_key: str | None = None
    template_version_id: int | None = None
    variables: dict[str, str] | None = None  # the template variables' values that filled it


# --- Callbacks --------------------------------------------------------------------------------------


def callback_token(task_id) -> str:
    """An unguessable per-task token for the callback URLs; verifiable without the database."""
    return signing.Signer(salt=CALLBACK_SALT).signature(str(task_id))


def callback_token_is_valid(task_id, token: str) -> bool:
    return constant_time_compare(callback_token(task_id), token)


def callback_urls(task_id) -> dict[str, str]:
    """The product's own pingback/postback URLs for a task, or {} when PUBLIC_BASE_URL is unset."""
    if not settings.PUBLIC_BASE_URL:
        return {}
    token = callback_token(task_id)
    kwargs = {"task_id": task_id, "token": token}
    return {
        "pingback_url": settings.PUBLIC_BASE_URL + reverse("callback_pingback", kwargs=kwargs),
        "postback_url": settings.PUBLIC_BASE_URL + reverse("callback_postback", kwargs=kwargs),
    }


# --- Submission -------------------------------------------------------------------------------------


def submit_tasks(
    *,
    specs: list[TaskSpec],
    credential: Credential,
    user,
    batch: Batch | None = None,
    mode: str = Task.Mode.QUEUED,
) -> list[Task]:
    """Plan tasks: create them, reserve their budget and commit them with the chunks workers send them
    in; return them (queued) in the order of `specs`. Nothing is posted here.

    A spec whose idempotency key was already used returns the existing task and plans nothing, so a
    double click or a resent form never pays twice. Budget limits are checked for the whole submission
    before anything is created (tasks.budgets.BudgetExceeded). Workers then send each chunk
    (tasks/submission/chunks.py), and every task ends in a recorded state: submitted, failed (with the
    upstream's message) or unknown (reply lost).
    """
    pks = submit_task_ids(specs=specs, credential=credential, user=user, batch=batch, mode=mode)
    saved = Task.objects.in_bulk(pks)
    return [saved[pk] for pk in pks]


def submit_task_ids(
    *,
    specs: list[TaskSpec],
    credential: Credential,
    user,
    batch: Batch | None = None,
    mode: str = Task.Mode.QUEUED,
    keys_checked: bool = False,
    held: dict[str, int] | None = None,
) -> list[uuid.UUID]:
    """`submit_tasks`, returning the tasks' ids instead of loading them (a batch never needs its rows
    back).

    One transaction checks the budgets, saves a new `batch` (not saved yet), writes every task row
    (queued) and its chunk of ≤ 100 (one per task in live mode), and enqueues the sending job on commit;
    a submission refused before anything is written leaves no batch behind. If a concurrent submit with
    the same keys won, the batch stays unsaved and the ids returned are the winner's.

    `keys_checked`: the caller has made sure that no task has the specs' idempotency keys yet (a batch
    looks up its first key). A concurrent submit with the same keys is still caught by the unique key.

    `held`: the caller has checked the budgets already and holds these specs' charges (the holds of
    `budget_hold_create`), as a batch of several providers does for all its submissions at once: the
    rows take their place, in the transaction that writes them. The caller releases them if this raises.
    """
    if not specs:
        return []
    if not credential.is_active:
        raise SubmissionError(f"The credential “{credential.name}” is disabled.")
    if mode == Task.Mode.LIVE and len(specs) != 1:
        raise SubmissionError("A live request takes exactly one task.")
    provider = specs[0].provider
    if any(spec.provider != provider for spec in specs):
        raise SubmissionError("One submission goes to one provider.")

    keys = [spec.idempotency_key for spec in specs if spec.idempotency_key]
    existing = [] if keys_checked else _existing_for_keys(keys)
    if existing:
        return existing

    estimate = queued_charge_per_task(price_multiplier=credential.price_multiplier)
    submission = _Submission(
        specs=specs,
        charges=[(_task_tag(spec.body), estimate) for spec in specs],
        provider=provider,
        mode=mode,
        credential=credential,
        user=user,
        batch=batch,
        started=timezone.now(),
    )
    new_batch = batch is not None and batch._state.adding
    try:
        with transaction.atomic():
            if held is None:
                budgets_reserve(user=user, charges=submission.charges)
            else:
                budget_hold_release(holds=held)  # the rows written below take its place
            if new_batch:
                batch.save(force_insert=True)
            chunk_count = _plan(submission)
            transaction.on_commit(partial(jobs.send_chunks_soon, chunks=chunk_count))
    except IntegrityError:
        if new_batch:
            batch._state.adding = True  # its save was rolled back with the rows
        # A concurrent submit with the same idempotency key won the race: show its tasks.
        existing = _existing_for_keys(keys)
        if existing:
            return existing
        raise
    return submission.pks


def _existing_for_keys(keys: list[str]) -> list[uuid.UUID]:
    if not keys:
        return []
    return list(
        Task.objects.filter(idempotency_key__in=keys)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)
    )


@dataclass
class _Submission:
    """One submission while it is planned: its specs and budget charges (by index), what all its tasks
    share, and the ids of the tasks written."""

    specs: list[TaskSpec]
    charges: list[tuple[str, Decimal]]  # (tag, estimated charge)
    provider: str
    mode: str
    credential: Credential
    user: object
    batch: Batch | None
    started: datetime
    pks: list[uuid.UUID] = field(default_factory=list)  # of specs, in order


@dataclass(frozen=True, slots=True)
class _Created:
    """A task row: what recording its outcome needs, without loading it."""

    pk: uuid.UUID
    body: dict


def _task_tag(body: dict) -> str:
    return str(body.get("tag", ""))[:255]


def _plan(submission: _Submission) -> int:
    """Write the submission's chunks and every task row (queued, reserving its estimate, pointing at its
    chunk), each table in one bulk write; return the number of chunks. The caller owns the transaction."""
    size = 1 if submission.mode == Task.Mode.LIVE else TASK_POST_CHUNK
    count = len(submission.specs)
    chunk_ids = [uuid7() for _ in range(0, count, size)]
    chunks_plan_rows(
        [{"id": chunk_id, "task_count": min(size, count - n * size)} for n, chunk_id in enumerate(chunk_ids)],
        credential_id=submission.credential.pk,
        provider=submission.provider,
        mode=submission.mode,
        batch_id=submission.batch.pk if submission.batch is not None else None,
        now=submission.started,
    )
    _create_tasks(submission, 0, count, chunk_of=lambda i: chunk_ids[i // size])
    return len(chunk_ids)


def _create_tasks(submission: _Submission, start: int, end: int, *, chunk_of=None, **state) -> list[_Created]:
    """Write the rows of specs[start:end] (queued, reserving their estimate, unless `state` says
    otherwise); the caller owns the transaction."""
    created, rows = [], []
    for i in range(start, end):
        pk, spec = uuid7(), submission.specs[i]
        # The product's own callback URLs of another task (copied by hand or from a template) are
        # dropped: this task gets its own. A person's own URLs stay as given.
        body = without_own_callbacks(spec.body)
        tag = _task_tag(body)
        own_callbacks = body.get("pingback_url") or body.get("postback_url")
        if submission.mode == Task.Mode.QUEUED and not own_callbacks:
            body.update(callback_urls(pk))
        if not tag:
            # api-reference §7: the tag is the person's; only when empty may it carry our id, so a
            # task whose reply was lost can be found upstream.
            body["tag"] = f"aisa-dashboard:{pk}"
        rows.append(
            {
                "id": pk,
                "chunk_id": chunk_of(i) if chunk_of is not None else None,
                "idempotency_key": spec.idempotency_key,
                "template_version_id": spec.template_version_id,
                "variables": spec.variables,
                "request_body": body,
                "user_prompt": str(body.get("user_prompt", ""))[:500],
                "model_name": str(body.get("model_name", ""))[:100],
                "tag": tag,
                # A microsecond apart, so the tasks of one submission list in the order they were given.
                "created_at": submission.started + timedelta(microseconds=i),
            }
        )
        created.append(_Created(pk, body))
    user = submission.user
    estimate = submission.charges[start][1]
    insert_rows(
        Task,
        rows,
        same={
            "provider": submission.provider,
            "mode": submission.mode,
            "credential_id": submission.credential.pk,
            "submitted_by_id": user.pk if user is not None and user.pk else None,
            "batch_id": submission.batch.pk if submission.batch is not None else None,
            "estimated_charge": estimate,
            "spend": estimate,
            **state,
        },
    )
    submission.pks.extend(task.pk for task in created)
    return created


def _not_sent(message: str) -> dict:
    """A task's fields once it is known never to have been sent: failed, and it costs nothing."""
    return {
        "status": Task.Status.FAILED,
        "status_message": message,
        "spend": Decimal("0"),
        "spend_is_final": True,
        "completed_at": timezone.now(),
    }


def _add_events(tasks: list, **fields) -> None:
    insert_rows(TaskEvent, [{"task_id": task.pk} for task in tasks], same=fields)


def _client(credential: Credential) -> LLMResponsesClient:
    return LLMResponsesClient.for_credential(credential)


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
        Task.objects.filter(pk__in=[task.pk for task in tasks]).update(
            status=Task.Status.UNKNOWN, status_message=message
        )
        _add_events(tasks, kind=TaskEvent.Kind.UNKNOWN, message=message)


def tasks_mark_interrupted(*, tasks: list[Task]) -> None:
    """Tasks left `queued` outside any chunk by a process that stopped while sending them (before chunks
    existed): they may have been accepted."""
    tasks_mark_unknown(
        tasks=tasks,
        message="The submission was interrupted after this task was saved and before the upstream's answer "
        "was recorded. It may have been accepted and charged, so it was not sent again.",
    )


def tasks_record_post_outcomes(*, tasks: list, outcomes: list[TaskOutcome]) -> None:
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
        jobs.schedule_collect(accepted, delay=POLL_DELAYS[0])


def task_record_live(*, task_id, outcome: TaskOutcome) -> None:
    """Record the answer of a live request: its charge, then the result as a poll's would be."""
    Task.objects.filter(pk=task_id).update(
        upstream_task_id=outcome.id or None,
        submitted_at=timezone.now(),
        charged=outcome.cost,
        spend=outcome.cost,
    )
    task = Task.objects.get(pk=task_id)
    TaskEvent.objects.create(
        task=task,
        kind=TaskEvent.Kind.POSTED,
        status_code=outcome.status_code,
        message=outcome.status_message,
        cost_change=outcome.cost,
    )
    task_apply_outcome(task=task, outcome=outcome, source=TaskEvent.Kind.POLLED)


# --- Collection -------------------------------------------------------------------------------------


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
    """The task's real cost: what the upstream reports for it, else base fee + money_spent (§6)."""
    if outcome.cost:
        return outcome.cost
    if task.mode == Task.Mode.LIVE and task.charged:
        return task.charged
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
            client = _client(task.credential)
        elif task.credential_id in clients:
            client = clients[task.credential_id]
        else:
            client = clients[task.credential_id] = _client(task.credential)
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
        jobs.schedule_collect(ids, delay=delay)


def poll_lease() -> timedelta:
    """The longest one task_get can take (connect attempts and their backoff, the read timeout, waits for
    rate limits), plus a margin: how long a poll holds its task's slot at most."""
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
    if task.submitted_at and now - task.submitted_at > GIVE_UP_AFTER:
        updated = Task.objects.filter(pk=task.pk, status__in=Task.ACTIVE_STATUSES).update(
            status=Task.Status.FAILED,
            status_message="No result after 72 hours; the upstream gives up on queued tasks then.",
            completed_at=now,
            next_poll_at=None,
        )
        if updated:
            TaskEvent.objects.create(
                task=task, kind=TaskEvent.Kind.FAILED, message="Gave up after 72 hours without a result."
            )
        return None
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
    return None if final else delay


class PostbackRejected(Exception):
    """A postback body that cannot be applied to its task; nothing was changed. The message says why."""


def callback_postback_apply(*, task: Task, envelope) -> None:
    """Apply a postback body (the task_get envelope) to `task`.

    Raises PostbackRejected, having changed nothing, when the body is not an envelope (not an object, no
    task list, nested deeper than any result), holds no task object about this task, or that task object
    is not usable (no integer status_code, a cost that is not a number, a result that is not a list, ...).
    A usable one is recorded as a poll's would be (task_apply_outcome).
    """
    if not isinstance(envelope, dict):
        raise PostbackRejected("the body is not a JSON object")
    if json_depth_exceeds(envelope):
        raise PostbackRejected("the body is nested too deeply to be a task's result")
    tasks = envelope.get("tasks")
    if not isinstance(tasks, list):
        raise PostbackRejected("the body holds no task list")
    for raw in tasks:
        if isinstance(raw, dict) and raw.get("id") == task.upstream_task_id:
            try:
                outcome = parse_task_outcome(raw)
            except UpstreamMalformed as exc:
                raise PostbackRejected(str(exc)) from None
            task_apply_outcome(task=task, outcome=outcome, source=TaskEvent.Kind.CALLBACK)
            return
    raise PostbackRejected("no result for this task in the body")


# --- Catalog ----------------------------------------------------------------------------------------


def catalog_refresh(*, credential: Credential, provider: str) -> list[ProviderModel]:
    """Fetch the free `models` list and store it; models no longer listed are kept but marked."""
    models = _client(credential).models(provider)
    now = timezone.now()
    seen = []
    for info in models:
        ProviderModel.objects.update_or_create(
            provider=provider,
            model_name=info.model_name,
            defaults={
                "reasoning": info.reasoning,
                "web_search_supported": info.web_search_supported,
                "task_post_supported": info.task_post_supported,
                "is_listed": True,
                "fetched_at": now,
            },
        )
        seen.append(info.model_name)
    ProviderModel.objects.filter(provider=provider).exclude(model_name__in=seen).update(is_listed=False)
    return list(ProviderModel.objects.filter(provider=provider, is_listed=True))


def credential_verify(*, credential: Credential) -> tuple[bool, str]:
    """Check a credential with the free `models` endpoint and record the time and outcome."""
    try:
        count = len(_client(credential).models("chat_gpt"))
        ok, message = True, f"OK: the models endpoint listed {count} ChatGPT models."
    except (UpstreamError, CredentialKeyError) as exc:
        ok, message = False, str(exc)
    Credential.objects.filter(pk=credential.pk).update(
        last_verified_at=timezone.now(), last_verification_ok=ok, last_verification_message=message[:500]
    )
    credential.refresh_from_db()
    return ok, message
