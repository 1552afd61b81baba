"""Sending live tasks: one task per POST to `…/live`, answered (up to 120 s later) with the finished result.

A live task is planned like a queued one (tasks/submission/sending.py), as a chunk of its own (SendChunk
with mode `live`), and sent by a worker, never inside a web request. The queued chunks' loop
(tasks/submission/workers.py) leaves live chunks alone: a live call holds its connection for as long as
the model writes, so this loop keeps several in flight at once, in a pool of threads that only POST.
Every step is the queued chunks' own (tasks/submission/chunks.py), so the guarantees are the same:

1. `live_claim`: the next ready live chunk becomes `sending` with a lease, unless its credential already
   has MAX_LIVE_PER_PROVIDER live chunks of that provider sending (api-reference §6: at most 30 concurrent
   live tasks per provider per account). The count and the claim are one transaction holding the
   credential's SendingLimit row lock, so two workers never both take the 30th slot; on SQLite the
   transaction itself is the lock (IMMEDIATE).
2. `chunk_prepare`: the credential's rate-limit slot (a live call is a call like any other).
3. `chunk_mark_post_started`: committed before the POST; from then on the task is never sent again.
4. The POST, in a pool thread (which touches no database).
5. `chunk_record_outcome`: the answer completes the task (answer, citations, cost); a temporary refusal
   at no charge (50000, ...) plans it again after RESEND_DELAYS, as for task_post, and a 40202 (the
   per-minute rate limit) after the credential's rate limit; a lost reply makes it `unknown`, never
   resent; a 429, or a 40202 for the whole call, puts it back, planned.

A worker killed during the POST leaves its chunk `sending` with `post_started_at`: the sweep
(`chunks_sweep`, run by every loop) makes it unknown when the lease (longer than the 150 s read timeout,
LIVE_READ_TIMEOUT) runs out, and it is never sent again. docs/providers.md, "Live mode".
"""

import logging
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import suppress
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min
from django.tasks import task
from django.utils import timezone

from tasks.models import SendChunk, SendingLimit, Task
from tasks.submission.chunks import (
    Claimed,
    chunk_mark_post_started,
    chunk_take,
    chunks_sweep,
    worker_name,
)
from tasks.submission.replies import chunk_record_outcome
from tasks.submission.workers import (
    HEARTBEAT_EVERY,
    SEND_PRIORITY,
    _post_reply,
    chunk_prepare,
    job_enqueue_at,
    worker_seen,
)

logger = logging.getLogger(__name__)

MAX_LIVE_PER_PROVIDER = 30  # api-reference §6, per provider per account (credential)
LIVE_SLICE = 150.0  # seconds one live sending job claims for (a call may take 120 s; it is then awaited)


def live_threads() -> int:
    """How many live calls one worker keeps in flight (LIVE_SENDING_THREADS, default 10)."""
    return max(1, min(int(getattr(settings, "LIVE_SENDING_THREADS", 10) or 10), MAX_LIVE_PER_PROVIDER))


def _live_ready(now: datetime):
    limited = SendingLimit.objects.filter(limited_until__gt=now).values("credential_id")
    return (
        SendChunk.objects.filter(state=SendChunk.State.PLANNED, mode=Task.Mode.LIVE, not_before__lte=now)
        .exclude(credential_id__in=limited)
        .order_by("not_before", "id")
    )


def live_running(*, credential_id: int, provider: str) -> int:
    """Live chunks of this credential and provider whose POST may be in flight (claimed, not recorded)."""
    return SendChunk.objects.filter(
        state=SendChunk.State.SENDING, mode=Task.Mode.LIVE, credential_id=credential_id, provider=provider
    ).count()


def _full_pairs(now: datetime) -> set[tuple[int, str]]:
    """(credential, provider) pairs that have every live slot taken."""
    rows = (
        SendChunk.objects.filter(state=SendChunk.State.SENDING, mode=Task.Mode.LIVE)
        .values("credential_id", "provider")
        .annotate(running=Count("id"))
        .filter(running__gte=MAX_LIVE_PER_PROVIDER)
    )
    return {(row["credential_id"], row["provider"]) for row in rows}


def live_claim(*, worker: str, now: datetime | None = None) -> Claimed | None:
    """Claim the next ready live chunk whose credential has a live slot for its provider, and commit it
    (chunk and task `sending`); None when there is none."""
    full = _full_pairs(now or timezone.now())
    for _ in range(20):  # another worker may win a candidate, or fill its last slot; try the next
        now = now or timezone.now()
        candidates = _live_ready(now).values_list("pk", "credential_id", "provider")[:200]
        candidate = next(((pk, c, p) for pk, c, p in candidates if (c, p) not in full), None)
        if candidate is None:
            return None
        pk, credential_id, provider = candidate
        SendingLimit.objects.get_or_create(credential_id=credential_id)
        with transaction.atomic():
            # The credential's row lock makes "count, then claim" one step across workers (PostgreSQL).
            SendingLimit.objects.select_for_update().filter(credential_id=credential_id).first()
            if live_running(credential_id=credential_id, provider=provider) >= MAX_LIVE_PER_PROVIDER:
                full.add((credential_id, provider))
                now = None
                continue
            claimed = chunk_take(pk=pk, worker=worker, now=now)
            if claimed is None:
                now = None
                continue
            return claimed
    return None


def live_next_ready_at() -> datetime | None:
    """When a live chunk may next be claimable: now if one is ready, else the earliest end of a delay or
    of a lease (the sweep then takes that chunk back); None when no live chunk waits."""
    now = timezone.now()
    if _live_ready(now).exists():
        return now
    planned = SendChunk.objects.filter(state=SendChunk.State.PLANNED, mode=Task.Mode.LIVE)
    times = [
        planned.aggregate(at=Min("not_before"))["at"],
        SendingLimit.objects.filter(
            limited_until__gt=now, credential_id__in=planned.values("credential_id")
        ).aggregate(at=Min("limited_until"))["at"],
        SendChunk.objects.filter(state=SendChunk.State.SENDING, mode=Task.Mode.LIVE).aggregate(
            at=Min("lease_until")
        )["at"],
    ]
    times = [at for at in times if at is not None]
    return min(times) if times else None


def live_drain(
    *,
    worker: str | None = None,
    seconds: float | None = None,
    threads: int | None = None,
    wait_for_delayed: float = 0,
) -> int:
    """Send ready live chunks, up to `threads` at once, until none is left (or `seconds` have passed);
    return how many were claimed. Calls already in flight when time is up are awaited and recorded."""
    worker = worker or worker_name()
    threads = threads or live_threads()
    started = time.monotonic()
    # A client (its requests Session) is used by one call at a time, never by two threads at once: each
    # call in flight takes a set of clients (one per credential) from `spare` and gives it back when done.
    client_sets: list[dict] = []
    spare: list[dict] = []
    claimed_count = 0
    last_seen = None
    in_flight: dict[Future, tuple[Claimed, dict]] = {}
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="live-sender")
    try:
        while True:
            in_time = seconds is None or time.monotonic() - started < seconds
            if last_seen is None or timezone.now() - last_seen > HEARTBEAT_EVERY:
                chunks_sweep()
                worker_seen(worker=worker)
                last_seen = timezone.now()
            while in_time and len(in_flight) < threads:
                claimed = live_claim(worker=worker)
                if claimed is None:
                    break
                claimed_count += 1
                if not spare:
                    client_sets.append({})
                    spare.append(client_sets[-1])
                clients = spare.pop()
                client = chunk_prepare(claimed, clients=clients)
                if client is None or not chunk_mark_post_started(claimed):
                    spare.append(clients)
                    continue  # dealt with (recorded or put back), or no longer ours: never posted
                in_flight[pool.submit(_post_reply, client, claimed)] = (claimed, clients)
            if in_flight:
                done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                for future in done:
                    claimed, clients = in_flight.pop(future)
                    spare.append(clients)
                    chunk_record_outcome(claimed, future.result())
                continue
            if not in_time:
                break
            next_at = live_next_ready_at()
            if next_at is None or (next_at - timezone.now()).total_seconds() > wait_for_delayed:
                break
            time.sleep(min(max((next_at - timezone.now()).total_seconds(), 0.05), 1.0))
            last_seen = None  # sweep again: the wait may have been for a lease
    finally:
        for future, (claimed, _clients) in list(in_flight.items()):  # an error: record what came back
            with suppress(Exception):
                chunk_record_outcome(claimed, future.result())
        pool.shutdown(wait=True)
        for clients in client_sets:
            for client in clients.values():
                client.close()
        with suppress(Exception):
            worker_seen(worker=worker, sent=claimed_count)
    return claimed_count


@task(priority=SEND_PRIORITY)
def send_live() -> None:
    """Send planned live chunks for up to LIVE_SLICE seconds, then hand over to a new job if any wait."""
    try:
        live_drain(seconds=LIVE_SLICE, wait_for_delayed=2.0)
    finally:
        next_at = live_next_ready_at()
        if next_at is not None:
            send_live_at(next_at)


def send_live_soon() -> None:
    """Enqueue a live sending job for a live task just committed."""
    send_live.enqueue()


def send_live_at(when: datetime) -> None:
    """Enqueue one live sending job for `when`, unless one is already waiting to run by then."""
    job_enqueue_at(send_live, when)
