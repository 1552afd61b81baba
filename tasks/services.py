"""Where the product's state changes: submitting tasks, collecting their results, callbacks, the catalog.

Sending is built around one rule: a paid POST is never sent twice by accident and never lost track of.
Task rows are committed before the HTTP call; the upstream ids and charges are recorded after it; a
reply that was lost leaves the task `unknown` with an event saying so, and nothing is resent.
"""

import itertools
import logging
import math
import queue
import sys
import threading
import uuid
from collections import defaultdict, deque
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

from django.conf import settings
from django.core import signing
from django.db import DatabaseError, DataError, IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from uuid_utils.compat import uuid7

from tasks import jobs
from tasks.budgets import budget_hold_create, budget_hold_release, budget_hold_take, budgets_reserve
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
    UpstreamReplyLost,
    parse_task_outcome,
)
from tasks.crypto import CredentialKeyError
from tasks.models import Batch, Credential, ProviderModel, Task, TaskEvent
from tasks.own_callbacks import without_own_callbacks
from tasks.providers import QUEUED_BASE_FEE, QUEUED_PREPAYMENT, queued_charge_per_task
from tasks.results import MONEY_MAX, json_depth_exceeds, parse_result, storable_json, storable_text

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
    # The upstream puts its own task id in place of $id: what a task whose reply was lost needs.
    return {
        "pingback_url": settings.PUBLIC_BASE_URL + reverse("callback_pingback", kwargs=kwargs) + "?id=$id",
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
    """Create, reserve budget for, and post tasks; return them in the order of `specs`.

    A spec whose idempotency key was already used returns the existing task and posts nothing, so a
    double click or a resent form never pays twice. Budget limits are checked for the whole submission
    before anything is created (tasks.budgets.BudgetExceeded). Whatever the upstream answers, every
    created task ends in a recorded state: submitted, failed (with the upstream's message) or unknown
    (reply lost).
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
    """`submit_tasks`, returning the tasks' ids instead of loading them (a batch never needs its 1,000
    rows back).

    A new `batch` (not saved yet) is saved with the first chunk's rows, so a submission refused before
    anything is written leaves no batch behind; if a concurrent submit with the same keys won, it stays
    unsaved and the ids returned are the winner's.

    `keys_checked`: the caller has made sure that no task has the specs' idempotency keys yet (a batch
    looks up its first key: all its keys are written by one submission, and the first with the first
    chunk). A concurrent submit with the same keys is still caught, by the first chunk's transaction.

    The budgets are checked for the whole submission in the transaction that writes the first chunk's
    rows; the later chunks are written while the chunk before them is in flight, each committed before
    it is sent (see `_post_queued`; bench/bench_batch.py measures it).

    `held`: the caller has checked the budgets already and holds these specs' charges (the holds of
    `budget_hold_create`, made in the transaction that ran `budgets_reserve`), as a batch of several
    providers does for all its submissions at once: the rows take their shares from those holds instead
    of checking again. The caller releases them if this raises before writing anything.
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
    first_end = min(len(specs), TASK_POST_CHUNK)
    new_batch = batch is not None and batch._state.adding
    try:
        with transaction.atomic():
            if held is None:
                budgets_reserve(user=user, charges=submission.charges)
            if new_batch:
                batch.save(force_insert=True)
            first = _create_tasks(submission, 0, first_end)
            if held is None:
                submission.holds = budget_hold_create(user=user, charges=submission.charges[first_end:])
            else:
                submission.holds = held
                if first_end == len(specs):
                    budget_hold_release(holds=held)
                else:
                    budget_hold_take(holds=held, charges=submission.charges[:first_end])
    except IntegrityError:
        if new_batch:
            batch._state.adding = True  # its save was rolled back with the rows
        # A concurrent submit with the same idempotency key won the race: show its tasks.
        existing = _existing_for_keys(keys)
        if existing:
            return existing
        raise

    if mode == Task.Mode.LIVE:
        _post_live(Task.objects.get(pk=first[0].pk), credential)
    else:
        _post_queued(submission, first)
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
    """One submission while it is sent: its specs and budget charges (by index), what all its tasks
    share, the ids of the tasks written so far, and the budget holds for the tasks not written yet."""

    specs: list[TaskSpec]
    charges: list[tuple[str, Decimal]]  # (tag, estimated charge)
    provider: str
    mode: str
    credential: Credential
    user: object
    batch: Batch | None
    started: datetime
    holds: dict[str, int] = field(default_factory=dict)
    pks: list[uuid.UUID] = field(default_factory=list)  # of specs[:len(pks)], given as they are written


@dataclass(frozen=True, slots=True)
class _Created:
    """A task row just committed: what sending it and recording its outcome need, without loading it."""

    pk: uuid.UUID
    body: dict


def _task_tag(body: dict) -> str:
    return str(body.get("tag", ""))[:255]


def _create_tasks(submission: _Submission, start: int, end: int, **state) -> list[_Created]:
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


def _write_chunk(submission: _Submission, start: int) -> list[_Created]:
    """Write the next chunk's rows; their estimate moves from the submission's hold onto them. The
    caller owns the transaction."""
    end = min(start + TASK_POST_CHUNK, len(submission.specs))
    if end == len(submission.specs):  # the last chunk: what is left of the hold is its share
        budget_hold_release(holds=submission.holds)
    else:
        budget_hold_take(holds=submission.holds, charges=submission.charges[start:end])
    return _create_tasks(submission, start, end)


def _record_and_write(
    submission: _Submission, answered: list[_Created], outcomes: list[TaskOutcome], written: int
) -> list[_Created]:
    """Record a chunk's outcomes and write the next unwritten chunk, if any, in one transaction (one
    commit for both); return the chunk written.

    The write runs in a savepoint: if it fails, the outcomes are committed all the same, then its error
    is raised.
    """
    if not answered and written == len(submission.specs):
        return []  # a submission of one chunk: nothing to record yet and nothing more to write
    failure = None
    with transaction.atomic():
        if answered:
            _record_post_outcomes(answered, outcomes)
        if written == len(submission.specs):
            return []
        try:
            with transaction.atomic():
                return _write_chunk(submission, written)
        except DatabaseError as exc:
            failure = exc
    raise failure


def _give_up(submission: _Submission, not_sent: list[_Created], written: int, message: str) -> None:
    """Send nothing more: the rows written and not sent, and those of specs[written:] (written now, so
    every task asked for has a record), are failed as not sent."""
    _fail_unsent(not_sent, message)
    if written >= len(submission.specs):
        return
    with transaction.atomic():
        tasks = _create_tasks(submission, written, len(submission.specs), **_not_sent(message))
        _add_events(tasks, kind=TaskEvent.Kind.ERROR, message=message)


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


def _client(credential: Credential) -> LLMResponsesClient:
    return LLMResponsesClient.for_credential(credential)


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


def _post_queued(submission: _Submission, first: list[_Created]) -> None:
    """Post the submission's tasks (one call per chunk of ≤ 100), writing each chunk's rows while the
    chunk before it is in flight and recording each chunk's outcomes as its reply arrives.

    The calls run in a sending thread that never touches the database and posts only chunks whose rows
    are committed. While the upstream works on chunk k, this thread records chunk k-1 and writes chunk
    k+1, in one transaction, so the sender is never more than one chunk ahead of the recording. After a
    chunk fails nothing more is sent, and every task not sent is recorded as failed (written so, if it
    was not written yet). If writing or recording fails, the sender stops before its next chunk; tasks
    whose outcome was not recorded stay `queued`, and resume_collection later marks them unknown (never
    resends them); tasks not written by then are never written, and their hold is dropped.
    """
    try:
        client = _client(submission.credential)
    except CredentialKeyError as exc:
        _give_up(submission, first, len(first), f"Not sent: {exc}")
        budget_hold_release(holds=submission.holds)
        return
    ready: queue.SimpleQueue = queue.SimpleQueue()  # chunks whose rows are committed; None: no more
    replies: queue.SimpleQueue = queue.SimpleQueue()
    stop = threading.Event()
    departures = _Departures()

    def send() -> None:
        chunk: list[_Created] = []
        try:
            with client:
                for number in itertools.count(1):
                    if (chunk := ready.get()) is None or stop.is_set():
                        break
                    bodies = [task.body for task in chunk]
                    on_sent = partial(departures.left, number)
                    outcomes = client.task_post(submission.provider, bodies, on_sent=on_sent)
                    on_sent()  # answered, so it certainly left (whether or not the client said so)
                    replies.put((chunk, outcomes))
        except BaseException as exc:  # handed to the recording thread, which records or raises it
            replies.put((chunk, exc))
        finally:
            departures.left(sys.maxsize)  # nothing more will leave
        replies.put(None)

    handed: deque[list[_Created]] = deque([first])  # given to the sender and not answered yet
    written = len(first)

    def hand(chunk: list[_Created]) -> None:
        nonlocal written
        written += len(chunk)
        if chunk:
            handed.append(chunk)
        ready.put(chunk or None)  # None: nothing more to send

    # Handed before the sender starts, so it sends at once instead of waking to a thread that holds the
    # interpreter lock while it writes the next chunk (~5 ms).
    ready.put(first)
    sender = threading.Thread(target=send, name="task_post", daemon=True)
    sender.start()
    try:
        departures.wait_for(1)
        hand(_record_and_write(submission, [], [], written))  # the second chunk, while the first is in flight
        for answered in itertools.count(1):
            if (reply := replies.get()) is None:
                break
            chunk, outcomes = reply
            handed.popleft()
            if isinstance(outcomes, BaseException):
                not_sent = [task for later in handed for task in later]
                _give_up(submission, not_sent, written, _record_post_failure(chunk, outcomes))
                break
            if handed:  # the sender is posting the next chunk: let it leave first
                departures.wait_for(answered + 1)
            # Record this chunk and write the one after the next.
            hand(_record_and_write(submission, chunk, outcomes, written))
    finally:
        stop.set()
        ready.put(None)  # wakes the sender if it waits for a chunk
        sender.join()
        if written < len(submission.specs):  # else the last chunk's rows took what was left of it
            with suppress(DatabaseError):  # if the database is gone, the hold expires by itself
                budget_hold_release(holds=submission.holds)


class _Departures:
    """How many of a submission's chunks have left: their request handed to the socket in full, the
    reply still to come. The sending thread says so; the request's thread waits for it before its own
    database work, which would otherwise hold the interpreter lock while the sender has a request to
    send (on a 2-CPU machine that made each call ~2 ms longer, and the upstream's own time longer too:
    bench/bench_batch.py). The wait is capped, so a slow connect never holds the recording for long."""

    LIMIT = 1.0  # seconds

    def __init__(self) -> None:
        self._count = 0
        self._changed = threading.Condition()

    def left(self, count: int) -> None:
        with self._changed:
            self._count = max(self._count, count)
            self._changed.notify_all()

    def wait_for(self, count: int) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._count >= count, timeout=self.LIMIT)


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
        jobs.schedule_collect(accepted, delay=POLL_DELAYS[0])


def _post_live(task: Task, credential: Credential) -> None:
    try:
        outcome = _client(credential).live(task.provider, task.request_body)
    except CredentialKeyError as exc:
        _fail_unsent([task], f"Not sent: {exc}")
        return
    except UpstreamReplyLost as exc:
        _mark_unknown([task], f"The reply to the live request was lost ({exc}); it was not resent.")
        return
    except UpstreamError as exc:
        _fail_unsent([task], f"Not sent: {exc}")
        return
    Task.objects.filter(pk=task.pk).update(
        upstream_task_id=outcome.id or None,
        submitted_at=timezone.now(),
        charged=outcome.cost,
        spend=outcome.cost,
    )
    TaskEvent.objects.create(
        task=task,
        kind=TaskEvent.Kind.POSTED,
        status_code=outcome.status_code,
        message=outcome.status_message,
        cost_change=outcome.cost,
    )
    task.refresh_from_db()
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
