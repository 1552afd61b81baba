"""Where the product's state changes: submitting tasks, collecting their results, callbacks, the catalog.

Sending is built around one rule: a paid POST is never sent twice by accident and never lost track of.
Task rows are committed before the HTTP call; the upstream ids and charges are recorded after it; a
reply that was lost leaves the task `unknown` with an event saying so, and nothing is resent.
"""

import logging
import queue
import threading
import uuid
from collections import deque
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone
from uuid_utils.compat import uuid7

from tasks.crypto import CredentialKeyError
from tasks.models import Batch, Credential, Task, TaskEvent
from tasks.spend.budgets import budget_hold_create, budget_hold_release, budget_hold_take, budgets_reserve
from tasks.submission.bulk import insert_rows
from tasks.submission.callbacks import callback_urls
from tasks.submission.collection import task_apply_outcome
from tasks.submission.own_callbacks import without_own_callbacks
from tasks.submission.recording import (
    _add_events,
    _Created,
    _fail_unsent,
    _mark_unknown,
    _not_sent,
    _record_post_failure,
    _record_post_outcomes,
)
from tasks.upstream.clients import TASK_POST_CHUNK, client_for
from tasks.upstream.outcomes import TaskOutcome, UpstreamError, UpstreamReplyLost
from tasks.upstream.providers import queued_charge_per_task

logger = logging.getLogger(__name__)


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
    before anything is created (tasks.spend.budgets.BudgetExceeded). Whatever the upstream answers, every
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
    pipelined: bool = True,
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
    it is sent (see `_post_queued`; docs/performance.md). `pipelined=False`: the sequential reference path.

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
        _post_queued(submission, first, pipelined=pipelined)
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


def _chunk_post(client, submission: _Submission, chunk: list[_Created]) -> list[TaskOutcome] | BaseException:
    """One task_post call for one chunk whose rows are committed: its outcomes, or what it raised (for
    the caller to record; `_record_post_failure` raises what is not an upstream error)."""
    try:
        return client.task_post(submission.provider, [task.body for task in chunk])
    except BaseException as exc:
        return exc


def _post_queued(submission: _Submission, first: list[_Created], *, pipelined: bool = True) -> None:
    """Post the submission's tasks (one call per chunk of ≤ 100), recording each chunk's outcomes as its
    reply arrives. After a chunk fails nothing more is sent, and every task not sent is recorded as
    failed (written so, if it was not written yet). If writing or recording fails, nothing more is sent;
    tasks whose outcome was not recorded stay `queued`, and resume_collection later marks them unknown
    (never resends them); tasks not written by then are never written, and their hold is dropped.

    `pipelined` (the default): the calls run in a sending thread that never touches the database and
    posts only chunks whose rows are committed. While the upstream works on chunk k, this thread records
    chunk k-1 and writes chunk k+1, in one transaction, so the sender is never more than one chunk ahead
    of the recording. `pipelined=False` is the sequential reference: post a chunk, then record it and
    write the next, one after the other; both record the same outcomes (tests/submission/).
    """
    try:
        client = client_for(submission.credential)
    except CredentialKeyError as exc:
        _give_up(submission, first, len(first), f"Not sent: {exc}")
        budget_hold_release(holds=submission.holds)
        return
    written = len(first)
    try:
        with client:
            if pipelined:
                written = _post_pipelined(client, submission, first)
            else:
                chunk = first
                while chunk:
                    outcomes = _chunk_post(client, submission, chunk)
                    if isinstance(outcomes, BaseException):
                        _give_up(submission, [], written, _record_post_failure(chunk, outcomes))
                        break
                    chunk = _record_and_write(submission, chunk, outcomes, written)
                    written += len(chunk)
    finally:
        if written < len(submission.specs):  # else the last chunk's rows took what was left of it
            with suppress(DatabaseError):  # if the database is gone, the hold expires by itself
                budget_hold_release(holds=submission.holds)


def _post_pipelined(client, submission: _Submission, first: list[_Created]) -> int:
    """`_post_queued` with the calls in a sending thread; returns how many tasks' rows were written."""
    ready: queue.SimpleQueue = queue.SimpleQueue()  # chunks whose rows are committed; None: no more
    replies: queue.SimpleQueue = queue.SimpleQueue()
    stop = threading.Event()

    def send() -> None:
        while (chunk := ready.get()) is not None and not stop.is_set():
            outcomes = _chunk_post(client, submission, chunk)
            replies.put((chunk, outcomes))
            if isinstance(outcomes, BaseException):
                break
        replies.put(None)

    handed: deque[list[_Created]] = deque([first])  # given to the sender and not answered yet
    written = len(first)

    def hand(chunk: list[_Created]) -> None:
        nonlocal written
        written += len(chunk)
        if chunk:
            handed.append(chunk)
        ready.put(chunk or None)  # None: nothing more to send

    ready.put(first)  # handed before the sender starts, so it sends at once
    sender = threading.Thread(target=send, name="task_post", daemon=True)
    sender.start()
    try:
        hand(_record_and_write(submission, [], [], written))  # the second chunk, while the first is in flight
        while (reply := replies.get()) is not None:
            chunk, outcomes = reply
            handed.popleft()
            if isinstance(outcomes, BaseException):
                not_sent = [task for later in handed for task in later]
                _give_up(submission, not_sent, written, _record_post_failure(chunk, outcomes))
                break
            # Record this chunk and write the one after the next.
            hand(_record_and_write(submission, chunk, outcomes, written))
    finally:
        stop.set()
        ready.put(None)  # wakes the sender if it waits for a chunk
        sender.join()
    return written


def _post_live(task: Task, credential: Credential) -> None:
    try:
        outcome = client_for(credential).live(task.provider, task.request_body)
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
