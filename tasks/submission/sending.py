"""Submitting tasks: a submission is a plan, written in the request and sent by workers.

Sending is built around one rule: a paid POST is never sent twice by accident and never lost track of.
Here, in one transaction, the budgets are checked and every task row and its chunk are committed; the
workers of tasks/submission/workers.py then claim, post and record each chunk (tasks/submission/chunks.py;
docs/task-lifecycle.md, "Sending").
"""

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

from django.db import IntegrityError, transaction
from django.utils import timezone
from uuid_utils.compat import uuid7

from tasks.models import Batch, Credential, Task
from tasks.spend.budgets import BudgetExceeded, budgets_reserve
from tasks.submission.bulk import insert_rows
from tasks.submission.callbacks import callback_urls
from tasks.submission.chunks import chunks_plan_rows
from tasks.submission.live import send_live_soon
from tasks.submission.own_callbacks import without_own_callbacks
from tasks.submission.recording import _Created
from tasks.submission.workers import send_chunks_soon
from tasks.upstream.clients import TASK_POST_CHUNK
from tasks.upstream.providers import OWN_TAG_PREFIX, charge_per_task

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
    """Plan tasks: create them, reserve their budget and commit them with the chunks workers send them
    in; return them (queued) in the order of `specs`. Nothing is posted here.

    A spec whose idempotency key was already used returns the existing task and plans nothing, so a
    double click or a resent form never pays twice. Budget limits are checked for the whole submission
    before anything is created (tasks.spend.budgets.BudgetExceeded). Workers then send each chunk
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
    budgets_checked: bool = False,
) -> list[uuid.UUID]:
    """`submit_tasks`, returning the tasks' ids instead of loading them (a batch never needs its rows
    back).

    One transaction checks the budgets, saves a new `batch` (not saved yet), writes every task row
    (queued) and its chunk of ≤ 100 (one per task in live mode), and enqueues the sending job on commit;
    a submission refused before anything is written leaves no batch behind. If a concurrent submit with
    the same keys won, the batch stays unsaved and the ids returned are the winner's.

    `keys_checked`: the caller has made sure that no task has the specs' idempotency keys yet (a batch
    looks up its first key). A concurrent submit with the same keys is still caught by the unique key.

    `budgets_checked`: the caller has called `budgets_reserve` for these specs' charges in the transaction
    this runs in, as a batch or a monitor's run of several providers does for all its submissions at once,
    every one written before that transaction commits.
    """
    if not specs:
        return []
    if not credential.is_active:
        raise SubmissionError(f"The credential “{credential.name}” is disabled.")
    provider = specs[0].provider
    if any(spec.provider != provider for spec in specs):
        raise SubmissionError("One submission goes to one provider.")

    keys = [spec.idempotency_key for spec in specs if spec.idempotency_key]
    existing = [] if keys_checked else _existing_for_keys(keys)
    if existing:
        return existing

    estimate = charge_per_task(mode=mode, price_multiplier=credential.price_multiplier)
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
            if not budgets_checked:
                budgets_reserve(user=user, charges=submission.charges)
            if new_batch:
                batch.save(force_insert=True)
            chunk_count = _plan(submission)
            if mode == Task.Mode.LIVE:
                transaction.on_commit(send_live_soon)
            else:
                transaction.on_commit(partial(send_chunks_soon, chunks=chunk_count))
    except (IntegrityError, BudgetExceeded):
        if new_batch:
            batch._state.adding = True  # its save was rolled back with the rows
        # A concurrent submit with the same idempotency key won the race: show its tasks. Refused by the
        # budgets, too: the keys were looked up before the budgets' lock, which waited for that submit to
        # commit, so the charge over the limit may be its own (a double click): it was sent, not refused.
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
            body["tag"] = f"{OWN_TAG_PREFIX}{pk}"
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
