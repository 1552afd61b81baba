"""Recording what a chunk's POST came back with (step 5 of tasks/submission/chunks.py), in one transaction:
the chunk's own state, then its tasks' (the task writes are tasks/submission/recording.py's). A reply that
says nothing was taken puts the chunk back, planned; tasks refused for now are planned again in a chunk of
their own. The delays are chunks.py's (`UNREACHABLE_DELAYS`, `RESEND_DELAYS`), read at each call."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from tasks.crypto import CredentialKeyError
from tasks.models import SendChunk, Task
from tasks.submission import chunks, recording
from tasks.submission.chunks import Claimed
from tasks.submission.rate_limits import sending_limited
from tasks.upstream.outcomes import (
    StatusClass,
    TaskOutcome,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamReplyLost,
    UpstreamUnavailable,
)

logger = logging.getLogger(__name__)

RATE_LIMIT_CODE = 40202  # a task refused so waits for the credential's rate limit, not RESEND_DELAYS


def chunk_record_outcome(claimed: Claimed, reply: list[TaskOutcome] | TaskOutcome | BaseException) -> None:
    """Record what the POST came back with, in one transaction (see tasks/submission/chunks.py, step 5).

    The chunk's own conditional UPDATE comes first: it locks the chunk, and its row count says whether
    the chunk is still this worker's (sending, or taken by the sweep as unknown while we waited: the
    reply wins); if not, nothing is written. Then the tasks: one UPDATE per group of equal outcomes (one
    for a whole accepted chunk) and one INSERT of their events."""
    chunk = claimed.chunk
    tasks = claimed.tasks
    now = timezone.now()
    if isinstance(reply, BaseException) and not isinstance(
        reply, (UpstreamError, CredentialKeyError, ValueError)
    ):
        raise reply  # not the upstream's doing: the chunk stays in flight, the sweep makes it unknown
    done = {"finished_at": now, "lease_until": None}
    planned_again = {
        "state": SendChunk.State.PLANNED,
        "claimed_by": "",
        "lease_until": None,
        "post_started_at": None,
    }
    if isinstance(reply, UpstreamRateLimited):
        chunk_fields = {**planned_again, "last_error": str(reply)[:500]}  # not_before: the limit's end
    elif _not_taken_for_now(reply) and chunk.attempts < len(chunks.UNREACHABLE_DELAYS):
        delay = timedelta(seconds=chunks.UNREACHABLE_DELAYS[chunk.attempts])
        chunk_fields = {
            **planned_again,
            "not_before": now + delay,
            "last_error": str(reply)[:500],
            "attempts": chunk.attempts + 1,
        }
    elif isinstance(reply, UpstreamReplyLost):
        chunk_fields = {"state": SendChunk.State.UNKNOWN, "last_error": str(reply)[:500], **done}
    elif isinstance(reply, BaseException):
        # Refused as a whole (bad credentials, a 4xx; unreachable or refused for now after every retry),
        # or a credential that cannot make a client: nothing was accepted.
        chunk_fields = {"state": SendChunk.State.REJECTED, "last_error": str(reply)[:500], **done}
    else:
        chunk_fields = {"state": SendChunk.State.SENT, "last_error": "", **done}
    with transaction.atomic():
        chunks.commit_without_waiting_for_the_disk()
        mine = SendChunk.objects.filter(
            pk=chunk.pk,
            claimed_by=chunk.claimed_by,
            state__in=(SendChunk.State.SENDING, SendChunk.State.UNKNOWN),
        )
        if not mine.update(**chunk_fields):
            logger.warning("Chunk %s is no longer this worker's; its outcome is not recorded.", chunk.pk)
            return
        if isinstance(reply, UpstreamRateLimited):
            until = sending_limited(
                credential_id=chunk.credential_id, retry_after=reply.retry_after, message=str(reply)
            )
            SendChunk.objects.filter(pk=chunk.pk).update(not_before=until)
            _tasks_back_to_queued(chunk)
        elif isinstance(reply, UpstreamRejected) and chunk_fields["state"] == SendChunk.State.PLANNED:
            at, sends = chunk_fields["not_before"], len(chunks.UNREACHABLE_DELAYS) + 1
            recording.tasks_refused_whole_for_now(
                chunk_id=chunk.pk, reply=reply, at=at, send=chunk.attempts + 1, sends=sends
            )
        elif chunk_fields["state"] == SendChunk.State.PLANNED:
            _tasks_back_to_queued(chunk)
        elif isinstance(reply, UpstreamReplyLost):
            live = chunk.mode == Task.Mode.LIVE
            recording.tasks_mark_unknown(
                tasks=tasks,
                message=f"The reply to {'the live request' if live else 'task_post'} was lost ({reply}). The "
                "upstream may have accepted and charged this task, so it was not sent again"
                + ("." if live else "; it can be found upstream by its tag."),
            )
        elif isinstance(reply, UpstreamRejected) and _not_taken_for_now(reply):  # on its last attempt
            message = recording.whole_refusal_message(reply, send=chunk.attempts + 1)
            recording.tasks_fail_unsent(tasks=tasks, message=message)
        elif isinstance(reply, BaseException):
            recording.tasks_fail_unsent(tasks=tasks, message=f"Not sent: {reply}")
        else:
            resend = recording.tasks_record_outcomes(mode=chunk.mode, tasks=tasks, outcomes=reply)
            if resend:
                _tasks_send_again(chunk, resend, now=now)


def _not_taken_for_now(reply) -> bool:
    """Certainly not taken, and worth sending again later: nothing was sent, or the whole POST was refused
    with a temporary code (api-reference §4: 40101, 5xxxx; not 40202, a rate limit) and nothing accepted."""
    if isinstance(reply, UpstreamRejected) and not isinstance(reply, UpstreamRateLimited):
        return reply.status_class == StatusClass.TRANSIENT
    return isinstance(reply, UpstreamUnavailable)


_CALLS = {Task.Mode.QUEUED: "task_post", Task.Mode.LIVE: "the live call"}


def _tasks_send_again(chunk: SendChunk, resend: list[recording.Resend], *, now: datetime) -> None:
    """Tasks task_post (or live) refused with a temporary code (nothing charged): planned again in a chunk
    of their own, claimable after RESEND_DELAYS (a 40202: when the credential's rate limit, set here as a
    429's would be, ends). The accepted tasks of `chunk` are never in it. The caller owns the transaction."""
    limited_until = None
    delays = chunks.RESEND_DELAYS
    waves: dict[datetime, list[recording.Resend]] = {}
    for item in resend:
        if item.outcome.status_code == RATE_LIMIT_CODE:
            if limited_until is None:
                limited_until = sending_limited(
                    credential_id=chunk.credential_id,
                    retry_after=None,
                    message=f"{_CALLS[chunk.mode]} answered {RATE_LIMIT_CODE} for a task: "
                    + item.outcome.status_message,
                )
            at = limited_until
        else:
            at = now + timedelta(seconds=delays[min(item.attempt, len(delays)) - 1])
        waves.setdefault(at, []).append(item)
    for at, items in waves.items():
        again = SendChunk.objects.create(
            credential_id=chunk.credential_id,
            provider=chunk.provider,
            mode=chunk.mode,
            batch_id=chunk.batch_id,
            task_count=len(items),
            state=SendChunk.State.PLANNED,
            not_before=at,
            last_error=f"Sent again: {_CALLS[chunk.mode]} refused these tasks for now (chunk {chunk.pk}).",
        )
        recording.tasks_plan_again(resend=items, chunk_id=again.pk, at=at)


def _tasks_back_to_queued(chunk: SendChunk) -> None:
    """The tasks of a chunk that certainly was not accepted and goes back to planned: queued again (a
    live task was `sending`; unknown if the sweep took the chunk while we waited). The caller owns the
    transaction."""
    Task.objects.filter(chunk_id=chunk.pk, status__in=(Task.Status.SENDING, Task.Status.UNKNOWN)).update(
        status=Task.Status.QUEUED, status_message=""
    )
