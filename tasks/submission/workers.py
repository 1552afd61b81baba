"""The sending worker: a loop that claims, prepares, posts and records chunks (tasks/submission/chunks.py,
replies.py), with one sending thread so that one chunk's POST overlaps the database work of the chunks
around it; and the django-tasks-db job that runs it (docs/task-lifecycle.md, "Sending")."""

from __future__ import annotations

import logging
import queue
import threading
import time
from contextlib import suppress
from datetime import datetime, timedelta

from django.db.models import F, Q
from django.tasks import TaskResultStatus, task
from django.utils import timezone

from tasks.crypto import CredentialKeyError
from tasks.models import Credential, SendChunk, SendingWorker
from tasks.submission.chunks import (
    MAX_SLOT_WAIT,
    Claimed,
    chunk_claim,
    chunk_mark_post_started,
    chunk_post,
    chunk_release,
    chunks_next_ready_at,
    chunks_sweep,
    worker_name,
)
from tasks.submission.rate_limits import sending_next_slot_at, sending_slot_take
from tasks.submission.replies import chunk_record_outcome
from tasks.upstream.clients import LLMResponsesClient, client_for
from tasks.upstream.outcomes import TaskOutcome, UpstreamError, UpstreamRateLimited

logger = logging.getLogger(__name__)

HEARTBEAT_EVERY = timedelta(seconds=5)
SEND_PRIORITY = 10  # sending goes before polls and rollups waiting in the same queue
SEND_SLICE = 60.0  # seconds one sending job runs before handing over to a new one (other jobs go between)
SEND_JOBS = 2  # sending jobs enqueued for a submission of several chunks: one per worker that may help


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
            client = client_for(credential, max_rate_limit_wait=0)
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


@task(priority=SEND_PRIORITY)
def send_chunks() -> None:
    """Send planned chunks for up to SEND_SLICE seconds, then hand over: enqueue the next job now if
    chunks are ready, or for when the next delay, rate limit or lease ends."""
    try:
        chunks_drain(seconds=SEND_SLICE, wait_for_delayed=2.0)
    finally:  # even after an error (the database), what is left is not left without a job
        next_at = chunks_next_ready_at()
        if next_at is not None:
            send_chunks_at(next_at)


def send_chunks_soon(*, chunks: int = 1) -> None:
    """Enqueue sending jobs for a submission just committed: one per chunk up to SEND_JOBS."""
    for _ in range(min(max(chunks, 1), SEND_JOBS)):
        send_chunks.enqueue()


def send_chunks_at(when: datetime) -> None:
    """Enqueue one sending job for `when`, unless one is already waiting to run by then."""
    job_enqueue_at(send_chunks, when)


def job_enqueue_at(job, when: datetime) -> None:
    """Enqueue `job` to run at `when`, unless one of it is already waiting to run by then (or undated)."""
    from django_tasks_db.models import DBTaskResult, get_date_max

    waiting = DBTaskResult.objects.filter(task_path=job.module_path, status=TaskResultStatus.READY)
    if waiting.filter(Q(run_after__lte=when) | Q(run_after=get_date_max())).exists():
        return
    job.using(run_after=when).enqueue()
