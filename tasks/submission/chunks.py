"""Workers send planned chunks: claim, lease, POST, record; and the sweep after a worker that stopped.

A chunk (tasks.models.SendChunk, up to 100 tasks of one submission, one POST) goes through these steps,
each its own commit, so a worker killed between any two leaves a state that says what happened:

1. `chunk_claim`: the next ready chunk (planned, `not_before` passed, its credential not rate-limited)
   becomes `sending`, owned by this worker until `lease_until`; its tasks become `sending`. Several
   workers never claim one chunk: PostgreSQL skips rows another transaction has locked (SKIP LOCKED), and
   the claim itself is a conditional UPDATE (`state = planned`) whose row count says who won.
2. `sending_slot_take` (tasks.submission.rate_limits): a call slot of the credential, shared by all
   workers; a slot too far away puts the chunk back, planned, until then.
3. `chunk_mark_post_started`: `post_started_at` is committed just before the POST. From here on the
   chunk is never sent again.
4. `chunk_post`: the POST (tasks.clients; never resent by the client once its bytes may have left).
5. `chunk_record_outcome`: ONE transaction records what came back: accepted tasks `submitted` with their
   upstream ids, refused ones `failed` with the upstream's message, a lost reply `unknown` ("may have been
   charged"); a 429 / 40202 or a connection that certainly sent nothing puts the chunk back, planned,
   with a delay, and fails nothing.

`chunks_sweep` finds chunks whose lease ran out (their worker was killed or hung): one whose POST never
started goes back to planned (sent later by any worker, never labelled "may have been charged"); one
whose POST may have started becomes unknown, and is never sent again. docs/task-lifecycle.md, "Sending".
"""

import logging
import os
import queue
import socket
import threading
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Min, Q
from django.utils import timezone

from tasks.bulk import insert_rows
from tasks.clients import (
    BACKOFF_FACTOR,
    CONNECT_RETRIES,
    LIVE_READ_TIMEOUT,
    LLMResponsesClient,
    TaskOutcome,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamReplyLost,
    UpstreamUnavailable,
)
from tasks.crypto import CredentialKeyError
from tasks.models import Credential, SendChunk, SendingLimit, SendingWorker, Task
from tasks.submission.rate_limits import sending_limited, sending_next_slot_at, sending_slot_take

logger = logging.getLogger(__name__)

# A connection that certainly sent nothing is tried again after these delays (seconds), then the chunk's
# tasks fail as not sent.
UNREACHABLE_DELAYS = (5, 15, 60, 300)
MAX_SLOT_WAIT = 5.0  # seconds a claimed chunk waits for its rate-limit slot; longer: put back
HEARTBEAT_EVERY = timedelta(seconds=5)


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
        SendChunk.objects.filter(state=SendChunk.State.PLANNED, not_before__lte=now)
        .exclude(credential_id__in=limited)
        .order_by("not_before", "id")
    )


def chunk_claim(*, worker: str, now: datetime | None = None) -> Claimed | None:
    """Claim the next ready chunk for `worker` and commit it (chunk and tasks `sending`); None when no
    chunk is ready."""
    for _ in range(20):  # another worker may win each candidate; try the next
        now = now or timezone.now()
        with transaction.atomic():
            ready = _ready(now)
            if connection.features.has_select_for_update_skip_locked:
                ready = ready.select_for_update(skip_locked=True, of=("self",))
            candidate = ready.values_list("pk", flat=True).first()
            if candidate is None:
                return None
            won = SendChunk.objects.filter(pk=candidate, state=SendChunk.State.PLANNED).update(
                state=SendChunk.State.SENDING,
                claimed_by=worker,
                lease_until=now + sending_lease(),
                post_started_at=None,
            )
            if not won:
                now = None
                continue
            Task.objects.filter(chunk_id=candidate, status=Task.Status.QUEUED).update(
                status=Task.Status.SENDING
            )
            chunk = SendChunk.objects.select_related("credential").get(pk=candidate)
            rows = (
                Task.objects.filter(chunk_id=candidate, status=Task.Status.SENDING)
                .order_by("created_at", "id")
                .values_list("pk", "request_body")
            )
            return Claimed(chunk, [ClaimedTask(pk, body) for pk, body in rows])
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


# --- 5. the outcome ----------------------------------------------------------------------------------


def chunk_record_outcome(claimed: Claimed, reply: list[TaskOutcome] | TaskOutcome | BaseException) -> None:
    """Record what the POST came back with, in one transaction (see the module's docstring)."""
    from tasks import services

    chunk = claimed.chunk
    tasks = claimed.tasks
    now = timezone.now()
    with transaction.atomic():
        # Ours while sending, or taken by the sweep as unknown while we waited: the reply wins.
        mine = SendChunk.objects.select_for_update().filter(
            pk=chunk.pk,
            claimed_by=chunk.claimed_by,
            state__in=(SendChunk.State.SENDING, SendChunk.State.UNKNOWN),
        )
        if not mine.exists():
            logger.warning("Chunk %s is no longer this worker's; its outcome is not recorded.", chunk.pk)
            return
        done = {"finished_at": now, "lease_until": None}
        if isinstance(reply, UpstreamRateLimited):
            until = sending_limited(
                credential_id=chunk.credential_id, retry_after=reply.retry_after, message=str(reply)
            )
            _back_to_planned(chunk, not_before=until, error=str(reply))
        elif isinstance(reply, UpstreamUnavailable) and chunk.attempts < len(UNREACHABLE_DELAYS):
            delay = timedelta(seconds=UNREACHABLE_DELAYS[chunk.attempts])
            _back_to_planned(chunk, not_before=now + delay, error=str(reply), attempts=chunk.attempts + 1)
        elif isinstance(reply, UpstreamReplyLost):
            services.tasks_mark_unknown(
                tasks=tasks,
                message=f"The reply to {'the live request' if chunk.mode == Task.Mode.LIVE else 'task_post'} "
                f"was lost ({reply}). The upstream may have accepted and charged this task, so it was not "
                "sent again; it can be found upstream by its tag.",
            )
            mine.update(state=SendChunk.State.UNKNOWN, last_error=str(reply)[:500], **done)
        elif isinstance(reply, (UpstreamError, CredentialKeyError, ValueError)):
            # Refused as a whole (bad credentials, a 4xx, the upstream unreachable after every retry), or a
            # credential that cannot make a client: nothing was accepted.
            services.tasks_fail_unsent(tasks=tasks, message=f"Not sent: {reply}")
            mine.update(state=SendChunk.State.REJECTED, last_error=str(reply)[:500], **done)
        elif isinstance(reply, BaseException):
            raise reply
        elif chunk.mode == Task.Mode.LIVE:
            services.task_record_live(task_id=tasks[0].pk, outcome=reply)
            mine.update(state=SendChunk.State.SENT, last_error="", **done)
        else:
            services.tasks_record_post_outcomes(tasks=tasks, outcomes=reply)
            mine.update(state=SendChunk.State.SENT, last_error="", **done)


def _back_to_planned(
    chunk: SendChunk, *, not_before: datetime, error: str, attempts: int | None = None
) -> None:
    """A chunk that certainly was not accepted goes back to planned; the caller owns the transaction."""
    updates = {
        "state": SendChunk.State.PLANNED,
        "claimed_by": "",
        "lease_until": None,
        "post_started_at": None,
        "not_before": not_before,
        "last_error": error[:500],
    }
    if attempts is not None:
        updates["attempts"] = attempts
    SendChunk.objects.filter(pk=chunk.pk).update(**updates)
    Task.objects.filter(chunk_id=chunk.pk, status__in=(Task.Status.SENDING, Task.Status.UNKNOWN)).update(
        status=Task.Status.QUEUED, status_message=""
    )


# --- the sweep ---------------------------------------------------------------------------------------

INTERRUPTED = (
    "The worker sending this task stopped after its POST may have started and before the upstream's "
    "answer was recorded. It may have been accepted and charged, so it was not sent again; it can be "
    "found upstream by its tag."
)


def chunks_sweep(*, now: datetime | None = None) -> tuple[int, int]:
    """Take back the chunks whose lease ran out: (requeued, marked unknown)."""
    from tasks import services

    now = now or timezone.now()
    requeued = unknown = 0
    expired = SendChunk.objects.filter(state=SendChunk.State.SENDING, lease_until__lt=now)
    for pk, started in expired.values_list("pk", "post_started_at")[:1000]:
        with transaction.atomic():
            mine = SendChunk.objects.filter(pk=pk, state=SendChunk.State.SENDING, lease_until__lt=now)
            if started is None:
                if mine.filter(post_started_at__isnull=True).update(
                    state=SendChunk.State.PLANNED, claimed_by="", lease_until=None, not_before=timezone.now()
                ):
                    Task.objects.filter(chunk_id=pk, status=Task.Status.SENDING).update(
                        status=Task.Status.QUEUED
                    )
                    requeued += 1
            elif mine.filter(post_started_at__isnull=False).update(
                state=SendChunk.State.UNKNOWN, finished_at=now, last_error="The worker stopped mid-send."
            ):
                tasks = [
                    ClaimedTask(task_pk, {})
                    for task_pk in Task.objects.filter(chunk_id=pk, status=Task.Status.SENDING).values_list(
                        "pk", flat=True
                    )
                ]
                services.tasks_mark_unknown(tasks=tasks, message=INTERRUPTED)
                unknown += 1
    if requeued or unknown:
        logger.warning("Sweep: %d chunk(s) requeued, %d marked unknown.", requeued, unknown)
    return requeued, unknown


# --- the loop ----------------------------------------------------------------------------------------


def chunk_prepare(claimed: Claimed, *, clients: dict) -> LLMResponsesClient | None:
    """Everything before the commit that precedes the POST: the credential's client and a rate-limit
    slot. Returns the client, or None when the chunk was dealt with instead (nothing left in it, its
    credential unusable: recorded; no slot soon: put back until then)."""
    chunk = claimed.chunk
    credential: Credential = chunk.credential
    if not claimed.tasks:  # nothing left to send in it (its tasks were finished another way)
        SendChunk.objects.filter(pk=chunk.pk).update(state=SendChunk.State.SENT, finished_at=timezone.now())
        return None
    if not credential.is_active:
        chunk_record_outcome(claimed, ValueError(f"the credential “{credential.name}” is disabled."))
        return None
    try:
        client = clients.get(credential.pk)
        if client is None:
            # A 429 comes straight back (no wait inside the client): the chunk waits, not the worker.
            client = LLMResponsesClient.for_credential(credential, max_rate_limit_wait=0)
            clients[credential.pk] = client
    except (CredentialKeyError, ValueError) as exc:
        chunk_record_outcome(claimed, exc)
        return None
    wait = sending_slot_take(credential=credential, max_wait=MAX_SLOT_WAIT)
    if wait is None:
        chunk_release(claimed, not_before=sending_next_slot_at(credential=credential))
        return None
    if wait:
        time.sleep(wait)
    return client


def _post_reply(
    client: LLMResponsesClient, claimed: Claimed
) -> list[TaskOutcome] | TaskOutcome | BaseException:
    """The POST's outcome, or what it raised (recorded by chunk_record_outcome, which re-raises what is
    not the upstream's doing)."""
    try:
        return chunk_post(client, claimed)
    except (ValueError, TypeError) as exc:  # a body the client refuses before sending anything
        return UpstreamError(f"the request could not be built ({type(exc).__name__})")
    except BaseException as exc:
        return exc


class _Sender:
    """The worker's one sending thread: it takes (client, claimed chunk) and gives back (claimed chunk,
    reply), one chunk at a time, and never touches the database. The worker hands it a chunk only after
    that chunk's post_started_at is committed, and meanwhile records the previous chunk and claims the
    next, so the database work of one chunk overlaps the POST of the next (at most two chunks are this
    worker's at a time: one in flight, one being recorded or prepared). Plain `queue` hand-offs."""

    def __init__(self) -> None:
        self._todo: queue.SimpleQueue = queue.SimpleQueue()
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="chunk-sender", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._todo.get()) is not None:
            client, claimed = item
            self._done.put((claimed, _post_reply(client, claimed)))

    def send(self, client: LLMResponsesClient, claimed: Claimed) -> None:
        self._todo.put((client, claimed))

    def reply(self) -> tuple[Claimed, list[TaskOutcome] | TaskOutcome | BaseException]:
        return self._done.get()

    def close(self) -> None:
        self._todo.put(None)
        self._thread.join()


def chunk_send(claimed: Claimed, *, clients: dict) -> None:
    """Slot, commit, POST and record one claimed chunk, in this thread."""
    client = chunk_prepare(claimed, clients=clients)
    if client is None or not chunk_mark_post_started(claimed):
        return
    chunk_record_outcome(claimed, _post_reply(client, claimed))


def worker_seen(*, worker: str, sent: int = 0) -> None:
    now = timezone.now()
    updated = SendingWorker.objects.filter(name=worker).update(last_seen=now)
    if sent:
        from django.db.models import F

        SendingWorker.objects.filter(name=worker).update(chunks_sent=F("chunks_sent") + sent)
    if not updated:
        SendingWorker.objects.get_or_create(name=worker, defaults={"last_seen": now, "chunks_sent": sent})


def chunks_drain(
    *, worker: str | None = None, seconds: float | None = None, wait_for_delayed: float = 0
) -> int:
    """Send ready chunks until none is left (or `seconds` have passed); return how many were claimed.

    While one chunk is in flight (in the `_Sender` thread) this thread claims and prepares the next; when
    the reply comes, it commits the next chunk's post_started_at and hands it over, then records the
    reply. `wait_for_delayed`: also wait for chunks that become ready within that many seconds (a rate
    limit, a retry delay, a lease) instead of returning.
    """
    worker = worker or worker_name()
    started = time.monotonic()
    clients: dict = {}
    claimed_count = 0
    last_seen = None
    sender = _Sender()
    in_flight: Claimed | None = None
    prepared: tuple[LLMResponsesClient, Claimed] | None = None
    try:
        while True:
            in_time = seconds is None or time.monotonic() - started < seconds
            if last_seen is None or timezone.now() - last_seen > HEARTBEAT_EVERY:
                chunks_sweep()
                worker_seen(worker=worker)
                last_seen = timezone.now()
            while in_time and prepared is None:  # the next chunk, claimed and ready to go
                claimed = chunk_claim(worker=worker)
                if claimed is None:
                    break
                claimed_count += 1
                client = chunk_prepare(claimed, clients=clients)
                if client is not None:
                    prepared = (client, claimed)
            if in_flight is not None:
                answered, reply = sender.reply()
                if (
                    isinstance(reply, UpstreamRateLimited)
                    and prepared is not None
                    and prepared[1].chunk.credential_id == answered.chunk.credential_id
                ):  # the next chunk would meet the same limit: it waits with the rest
                    chunk_release(prepared[1], not_before=timezone.now())
                    prepared = None
                in_flight = _hand_over(sender, prepared)
                prepared = None
                chunk_record_outcome(answered, reply)
                continue
            if prepared is not None:
                in_flight = _hand_over(sender, prepared)
                prepared = None
                continue
            if not in_time:
                break
            next_at = chunks_next_ready_at()
            if next_at is None or (next_at - timezone.now()).total_seconds() > wait_for_delayed:
                break
            time.sleep(min(max((next_at - timezone.now()).total_seconds(), 0.05), 1.0))
            last_seen = None  # sweep again: the wait may have been for a lease
    finally:
        if in_flight is not None:  # an error here while a chunk was in flight: record its reply if we can
            with suppress(Exception):
                answered, reply = sender.reply()
                chunk_record_outcome(answered, reply)
        if prepared is not None:  # claimed, never started: back to planned (else the sweep does it)
            with suppress(Exception):
                chunk_release(prepared[1], not_before=timezone.now())
        sender.close()
        for client in clients.values():
            client.close()
        with suppress(Exception):
            worker_seen(worker=worker, sent=claimed_count)
    return claimed_count


def _hand_over(sender: _Sender, prepared: tuple[LLMResponsesClient, Claimed] | None) -> Claimed | None:
    """Commit a prepared chunk's post_started_at and give it to the sender; the chunk now in flight."""
    if prepared is None:
        return None
    client, claimed = prepared
    if not chunk_mark_post_started(claimed):  # no longer ours (swept or requeued): never posted
        return None
    sender.send(client, claimed)
    return claimed


def chunks_next_ready_at() -> datetime | None:
    """When a chunk may next be claimable: now if one is ready, else the earliest end of a delay, of a
    credential's rate limit or of a lease (the sweep then takes that chunk back); None when nothing waits."""
    now = timezone.now()
    if _ready(now).exists():
        return now
    planned = SendChunk.objects.filter(state=SendChunk.State.PLANNED)
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
