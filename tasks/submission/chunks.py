"""The steps of sending a planned chunk: claim, lease, POST, record; and the sweep after a worker that
stopped. The worker loop that runs them is tasks/submission/workers.py; the recording of a reply (step 5)
is tasks/submission/replies.py.

A chunk (tasks.models.SendChunk, up to 100 tasks of one submission, one POST) goes through these steps,
each its own commit, so a worker killed between any two leaves a state that says what happened:

1. `chunk_claim`: the next ready chunk (planned, `not_before` passed, its credential not rate-limited)
   becomes `sending`, owned by this worker until `lease_until`. Its tasks stay `queued` (the pages show
   a queued task of a sending chunk as being sent; a live chunk's one task becomes `sending`). Several
   workers never claim one chunk: PostgreSQL skips rows another transaction has locked (SKIP LOCKED), and
   the claim itself is a conditional UPDATE (`state = planned`) whose row count says who won.
2. `chunk_prepare` (workers.py) and `sending_slot_take` (tasks.submission.rate_limits): a call slot of
   the credential, shared by all workers; a slot too far away puts the chunk back, planned, until then.
3. `chunk_mark_post_started`: `post_started_at` is committed just before the POST. From here on the
   chunk is never sent again.
4. `chunk_post`: the POST (tasks.upstream.clients; never resent by the client once its bytes may have left).
5. `chunk_record_outcome` (tasks/submission/replies.py): ONE transaction records what came back:
   accepted tasks `submitted` with their upstream ids, refused ones `failed` with the upstream's message
   (a task refused with a temporary code, 50000 or 40202, charged nothing: planned again in a new chunk,
   after a delay, up to 3 sends), a lost reply `unknown` ("may have been charged"); a 429 / 40202, a
   connection that certainly sent nothing or a POST refused as a whole for now (top-level 40101) puts
   the chunk back, planned, with a delay.

`chunks_sweep` finds chunks whose lease ran out (their worker was killed or hung): one whose POST never
started goes back to planned (sent later by any worker, never labelled "may have been charged"); one
whose POST may have started becomes unknown, and is never sent again. docs/task-lifecycle.md, "Sending".
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Min, Q
from django.template.defaultfilters import pluralize
from django.utils import timezone

from tasks.models import SendChunk, SendingLimit, Task
from tasks.submission import recording
from tasks.submission.bulk import insert_rows
from tasks.upstream.clients import LIVE_READ_TIMEOUT, LLMResponsesClient
from tasks.upstream.outcomes import TaskOutcome
from tasks.upstream.session import BACKOFF_FACTOR, CONNECT_RETRIES

logger = logging.getLogger(__name__)

# A connection that certainly sent nothing, or a POST refused as a whole with a temporary code (a top-level
# 40101, nothing accepted), is tried again after these delays (seconds), then the chunk's tasks fail as not
# sent.
UNREACHABLE_DELAYS = (5, 15, 60, 300)
# A task task_post (or live) refused with a temporary code (50000, 50001, 503xx, 40101) is sent again after
# these delays (seconds: after its 1st, its 2nd send), up to recording.RESEND_ATTEMPTS sends; a 40202 waits
# for the credential's rate limit instead.
RESEND_DELAYS = (120, 300)
MAX_SLOT_WAIT = 5.0  # seconds a claimed chunk waits for its rate-limit slot; longer: put back


def sending_lease() -> timedelta:
    """How long a claimed chunk stays its worker's: the longest its slot wait and POST can take (connect
    attempts and their backoff, the read timeout of a live call), plus a margin. SENDING_LEASE_SECONDS
    overrides it."""
    if getattr(settings, "SENDING_LEASE_SECONDS", None):
        return timedelta(seconds=settings.SENDING_LEASE_SECONDS)
    connect = settings.UPSTREAM_CONNECT_TIMEOUT * (CONNECT_RETRIES + 1) + BACKOFF_FACTOR * 2**CONNECT_RETRIES
    read = max(settings.UPSTREAM_READ_TIMEOUT, LIVE_READ_TIMEOUT)
    return timedelta(seconds=MAX_SLOT_WAIT + connect + read + 60)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


@dataclass
class ClaimedTask:
    """A task of a claimed chunk: what posting it and recording its outcome need."""

    pk: uuid.UUID
    body: dict


@dataclass
class Claimed:
    chunk: SendChunk
    tasks: list[ClaimedTask]


# --- 1. claim ----------------------------------------------------------------------------------------


def _ready(now: datetime):
    limited = SendingLimit.objects.filter(limited_until__gt=now).values("credential_id")
    return (
        # Live chunks are sent by tasks/submission/live.py, several at once.
        SendChunk.objects.filter(state=SendChunk.State.PLANNED, mode=Task.Mode.QUEUED, not_before__lte=now)
        .exclude(credential_id__in=limited)
        .order_by("not_before", "id")
    )


def commit_without_waiting_for_the_disk() -> None:
    """Inside a transaction, on PostgreSQL: its commit returns before the WAL reaches the disk
    (`synchronous_commit` off for this transaction only; a crash of the database server, not of a
    worker, can lose it). Only for the commits whose loss is safe: the claim (lost: the chunk was never
    claimed, and is sent later) and the outcome (lost: the chunk is again `sending` with its POST started,
    so the sweep makes it unknown, as a lost reply, even if the reply said nothing was taken; never
    resent). The commit of post_started_at, which is
    what keeps a chunk from being sent twice, waits for the disk, and a later commit that waits flushes
    every earlier one. SQLite (WAL, synchronous=NORMAL) does not wait for the disk at commit anyway."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def chunk_take(*, pk, worker: str, now: datetime, chunk: SendChunk | None = None) -> Claimed | None:
    """Inside the caller's transaction: make a planned chunk this worker's (`sending`, with a lease);
    None if another worker took it first (the update is conditional on `planned`). `chunk`: the row
    already read (with its credential) by the caller, else it is read here.

    A queued chunk's tasks stay `queued`: the chunk's state says they are being sent (the task and batch
    pages read it), so claiming rewrites one row, not a hundred. A live chunk's one task becomes
    `sending` (its call can take minutes, and its page says so)."""
    lease_until = now + sending_lease()
    won = SendChunk.objects.filter(pk=pk, state=SendChunk.State.PLANNED).update(
        state=SendChunk.State.SENDING, claimed_by=worker, lease_until=lease_until, post_started_at=None
    )
    if not won:
        return None
    if chunk is None:
        chunk = SendChunk.objects.select_related("credential").get(pk=pk)
    else:
        chunk.state, chunk.claimed_by, chunk.lease_until = SendChunk.State.SENDING, worker, lease_until
        chunk.post_started_at = None
    waiting = Task.objects.filter(chunk_id=pk, status=Task.Status.QUEUED)
    if chunk.mode == Task.Mode.LIVE:
        waiting.update(status=Task.Status.SENDING)
        waiting = Task.objects.filter(chunk_id=pk, status=Task.Status.SENDING)
    rows = waiting.order_by("created_at", "id").values_list("pk", "request_body")
    return Claimed(chunk, [ClaimedTask(task_pk, body) for task_pk, body in rows])


def chunk_claim(*, worker: str, now: datetime | None = None) -> Claimed | None:
    """Claim the next ready chunk for `worker` and commit it (the chunk `sending`, its tasks still
    `queued`); None when no chunk is ready."""
    for _ in range(20):  # another worker may win each candidate; try the next
        now = now or timezone.now()
        with transaction.atomic():
            commit_without_waiting_for_the_disk()
            ready = _ready(now).select_related("credential")
            if connection.features.has_select_for_update_skip_locked:
                ready = ready.select_for_update(skip_locked=True, of=("self",))
            candidate = ready.first()
            if candidate is None:
                return None
            claimed = chunk_take(pk=candidate.pk, worker=worker, now=now, chunk=candidate)
            if claimed is None:
                now = None
                continue
            return claimed
    return None


def chunk_release(
    claimed: Claimed, *, not_before: datetime, error: str = "", attempt_counts: bool = False
) -> bool:
    """Put a claimed chunk whose POST never started back: planned, claimable from `not_before`; its
    tasks queued again. The caller owns the transaction (or there is none)."""
    chunk = claimed.chunk
    updates = {
        "state": SendChunk.State.PLANNED,
        "claimed_by": "",
        "lease_until": None,
        "post_started_at": None,
        "not_before": not_before,
    }
    if error:
        updates["last_error"] = error[:500]
    if attempt_counts:
        updates["attempts"] = chunk.attempts + 1
    with transaction.atomic():
        released = SendChunk.objects.filter(
            pk=chunk.pk, state=SendChunk.State.SENDING, claimed_by=chunk.claimed_by
        ).update(**updates)
        if released:
            Task.objects.filter(chunk_id=chunk.pk, status=Task.Status.SENDING).update(
                status=Task.Status.QUEUED
            )
    return bool(released)


# --- 3. the commit before the POST -------------------------------------------------------------------


def chunk_mark_post_started(claimed: Claimed) -> bool:
    """Commit that this chunk's POST is about to start: from now on it is never sent again. False when the
    chunk is no longer this worker's (its lease ran out and the sweep took it back): then do not POST."""
    chunk = claimed.chunk
    now = timezone.now()
    started = SendChunk.objects.filter(
        pk=chunk.pk, state=SendChunk.State.SENDING, claimed_by=chunk.claimed_by, post_started_at__isnull=True
    ).update(post_started_at=now, lease_until=now + sending_lease())
    return bool(started)


# --- 4. the POST -------------------------------------------------------------------------------------


def chunk_post(client: LLMResponsesClient, claimed: Claimed) -> list[TaskOutcome] | TaskOutcome:
    """POST the chunk: task_post for its tasks (in their order), or `live` for a live task."""
    chunk = claimed.chunk
    if chunk.mode == Task.Mode.LIVE:
        return client.live(chunk.provider, claimed.tasks[0].body)
    return client.task_post(chunk.provider, [task.body for task in claimed.tasks])


# --- the sweep ---------------------------------------------------------------------------------------

INTERRUPTED = (
    "The worker sending this task stopped after its POST may have started and before the upstream's "
    "answer was recorded. It may have been accepted and charged, so it was not sent again; it can be "
    "found upstream by its tag."
)
# No tasks_ready lists a live task: the tag finds nothing.
INTERRUPTED_LIVE = INTERRUPTED.removesuffix("; it can be found upstream by its tag.") + "."


def chunks_sweep(*, now: datetime | None = None) -> tuple[int, int]:
    """Take back the chunks whose lease ran out: (requeued, marked unknown)."""
    now = now or timezone.now()
    requeued = unknown = 0
    expired = SendChunk.objects.filter(state=SendChunk.State.SENDING, lease_until__lt=now)
    for pk, started, mode in expired.values_list("pk", "post_started_at", "mode")[:1000]:
        with transaction.atomic():
            mine = SendChunk.objects.filter(pk=pk, state=SendChunk.State.SENDING, lease_until__lt=now)
            if started is None:
                if mine.filter(post_started_at__isnull=True).update(
                    state=SendChunk.State.PLANNED, claimed_by="", lease_until=None, not_before=timezone.now()
                ):  # a queued chunk's tasks are still queued; a live one's task was `sending`
                    Task.objects.filter(chunk_id=pk, status=Task.Status.SENDING).update(
                        status=Task.Status.QUEUED
                    )
                    requeued += 1
            elif mine.filter(post_started_at__isnull=False).update(
                state=SendChunk.State.UNKNOWN, finished_at=now, last_error="The worker stopped mid-send."
            ):
                tasks = [
                    ClaimedTask(task_pk, {})
                    for task_pk in Task.objects.filter(
                        chunk_id=pk, status__in=(Task.Status.QUEUED, Task.Status.SENDING)
                    ).values_list("pk", flat=True)
                ]
                message = INTERRUPTED_LIVE if mode == Task.Mode.LIVE else INTERRUPTED
                recording.tasks_mark_unknown(tasks=tasks, message=message)
                unknown += 1
    if requeued or unknown:
        logger.warning(
            "Sweep: %d chunk%s requeued, %d marked unknown.", requeued, pluralize(requeued), unknown
        )
    return requeued, unknown


# --- the loop ----------------------------------------------------------------------------------------


def chunks_next_ready_at() -> datetime | None:
    """When a chunk may next be claimable: now if one is ready, else the earliest end of a delay, of a
    credential's rate limit or of a lease (the sweep then takes that chunk back); None when nothing waits."""
    now = timezone.now()
    if _ready(now).exists():
        return now
    planned = SendChunk.objects.filter(state=SendChunk.State.PLANNED, mode=Task.Mode.QUEUED)
    times = [
        planned.filter(not_before__gt=now).aggregate(at=Min("not_before"))["at"],
        SendingLimit.objects.filter(
            limited_until__gt=now, credential_id__in=planned.values("credential_id")
        ).aggregate(at=Min("limited_until"))["at"],
        SendChunk.objects.filter(state=SendChunk.State.SENDING).aggregate(at=Min("lease_until"))["at"],
    ]
    times = [at for at in times if at is not None]
    return min(times) if times else None


def chunks_plan_rows(
    rows: list[dict], *, credential_id: int, provider: str, mode: str, batch_id, now
) -> None:
    """Insert the chunks of a submission (`rows`: id and task_count each); the caller owns the
    transaction and writes the tasks pointing at them."""
    insert_rows(
        SendChunk,
        rows,
        same={
            "credential_id": credential_id,
            "provider": provider,
            "mode": mode,
            "batch_id": batch_id,
            "state": SendChunk.State.PLANNED,
            "not_before": now,
        },
    )


def chunks_requeue(*, chunk_ids: list[str] | None) -> tuple[list, list[tuple[str, str]]]:
    """Make chunks whose POST never started claimable now (`chunk_ids` None: every such chunk): a delayed
    planned chunk, or a claimed one whose worker has not committed post_started_at (that worker then
    finds it is no longer its own, and posts nothing). Returns (requeued ids, [(id, why refused)]).

    Refused: a chunk whose POST may have started (sending with post_started_at, unknown), or that is
    finished (sent, rejected), or that does not exist.
    """
    now = timezone.now()
    never_started = Q(state=SendChunk.State.PLANNED) | Q(
        state=SendChunk.State.SENDING, post_started_at__isnull=True
    )
    refused: list[tuple[str, str]] = []
    if chunk_ids is None:
        candidates = list(SendChunk.objects.filter(never_started).values_list("pk", flat=True))
    else:
        candidates = []
        for raw in chunk_ids:
            try:
                chunk = SendChunk.objects.filter(pk=uuid.UUID(str(raw))).first()
            except ValueError:
                chunk = None
            if chunk is None:
                refused.append((raw, "no such chunk."))
            elif chunk.state == SendChunk.State.UNKNOWN or chunk.post_started_at is not None:
                refused.append(
                    (
                        raw,
                        "its POST may have reached the upstream, so sending it again could pay twice. Its "
                        "tasks are unknown; reconcile them from their task pages.",
                    )
                )
            elif chunk.state in (SendChunk.State.SENT, SendChunk.State.REJECTED):
                refused.append((raw, f"it is finished ({chunk.get_state_display().lower()})."))
            else:
                candidates.append(chunk.pk)
    requeued = []
    for pk in candidates:
        with transaction.atomic():
            if SendChunk.objects.filter(never_started, pk=pk).update(
                state=SendChunk.State.PLANNED, claimed_by="", lease_until=None, not_before=now
            ):
                Task.objects.filter(chunk_id=pk, status=Task.Status.SENDING).update(status=Task.Status.QUEUED)
                requeued.append(pk)
            else:
                refused.append((str(pk), "its POST started meanwhile."))
    return requeued, refused
