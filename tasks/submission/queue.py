"""What the sending queue looks like: for a batch's page, the admins' queue page and `sending_status`."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Exists, Min, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from tasks.models import Batch, Credential, SendChunk, SendingLimit, SendingWorker, Task

WORKER_SEEN_WITHIN = timedelta(minutes=1)


def no_worker_sending(chunks: QuerySet[SendChunk], *, now: datetime | None = None) -> bool:
    """Whether one of `chunks` has been ready to send for over WORKER_SEEN_WITHIN (planned, its delay over,
    its credential not rate-limited) while no worker was seen in that time: nothing sends it until a worker
    runs. The queue page's warning, for one task's or one batch's chunks: one query, two when a chunk has
    waited that long. (A worker waiting out a delay or a rate limit is not seen, so those chunks are left
    out.)"""
    now = now or timezone.now()
    limited = SendingLimit.objects.filter(limited_until__gt=now).values("credential_id")
    overdue = chunks.filter(state=SendChunk.State.PLANNED, not_before__lte=now - WORKER_SEEN_WITHIN)
    if not overdue.exclude(credential_id__in=limited).exists():
        return False
    return not SendingWorker.objects.filter(last_seen__gte=now - WORKER_SEEN_WITHIN).exists()


@dataclass(frozen=True)
class SendingProgress:
    """A batch's chunks by state, and why the next ones wait, if they do."""

    planned: int = 0
    sending: int = 0
    sent: int = 0
    rejected: int = 0
    unknown: int = 0
    # Tasks of queued (task_post) chunks being sent now: they stay `queued` until their chunk's outcome
    # (tasks/submission/chunks.py), so a page shows them as sending from here.
    tasks_sending: int = 0
    rate_limited_until: datetime | None = None  # the credential's limit the upstream set (429 / 40202)
    rate_limit_message: str = ""
    retry_at: datetime | None = None  # the earliest planned chunk waiting for a retry or a slot
    retry_reason: str = ""
    no_worker: bool = False  # chunks ready for over a minute and no worker seen (`no_worker_sending`)

    @property
    def total(self) -> int:
        return self.planned + self.sending + self.sent + self.rejected + self.unknown

    @property
    def waiting(self) -> bool:
        return bool(self.planned or self.sending)


def sending_progress(*, batch: Batch) -> SendingProgress:
    now = timezone.now()
    chunks = SendChunk.objects.filter(batch=batch)
    counts = chunks.aggregate(
        **{state: Count("pk", filter=Q(state=state)) for state in SendChunk.State.values},
        tasks_sending=Coalesce(
            Sum("task_count", filter=Q(state=SendChunk.State.SENDING, mode=Task.Mode.QUEUED)), 0
        ),
    )
    limit = (
        SendingLimit.objects.filter(
            limited_until__gt=now,
            credential_id__in=chunks.filter(state=SendChunk.State.PLANNED).values("credential_id"),
        )
        .order_by("-limited_until")
        .first()
    )
    delayed = chunks.filter(state=SendChunk.State.PLANNED, not_before__gt=now).order_by("not_before").first()
    return SendingProgress(
        **counts,
        rate_limited_until=limit.limited_until if limit else None,
        rate_limit_message=limit.limited_message if limit else "",
        retry_at=delayed.not_before if delayed else None,
        retry_reason=delayed.last_error if delayed else "",
        no_worker=bool(counts["planned"]) and no_worker_sending(chunks, now=now),
    )


@dataclass(frozen=True)
class CredentialQueue:
    credential: Credential
    planned: int
    sending: int
    unknown: int
    limited_until: datetime | None
    limited_message: str
    calls_per_minute: int | None


@dataclass(frozen=True)
class QueueState:
    """The whole queue, for the admins' queue page and `manage.py sending_status`."""

    planned: int
    ready: int
    delayed: int
    sending: int
    unknown: int
    rate_limited: int  # planned chunks of a credential the upstream asked to wait
    oldest_waiting: datetime | None
    workers: list[SendingWorker] = field(default_factory=list)  # seen in the last minute
    no_worker: bool = False  # chunks ready for over a minute and no worker seen (`no_worker_sending`)
    credentials: list[CredentialQueue] = field(default_factory=list)
    chunks: list[SendChunk] = field(default_factory=list)  # waiting or in flight, oldest first


def queue_state(*, chunk_limit: int = 50) -> QueueState:
    from tasks.submission.rate_limits import calls_per_minute

    now = timezone.now()
    limited = SendingLimit.objects.filter(limited_until__gt=now)
    limited_ids = set(limited.values_list("credential_id", flat=True))
    planned = SendChunk.objects.filter(state=SendChunk.State.PLANNED)
    # "Reply lost": chunks whose POST may have reached the upstream and a task of which is still unknown;
    # once reconciliation has found out what became of its tasks, a chunk no longer counts.
    lost = Q(
        Exists(Task.objects.filter(chunk=OuterRef("pk"), status=Task.Status.UNKNOWN)),
        state=SendChunk.State.UNKNOWN,
    )
    counts = SendChunk.objects.aggregate(
        planned=Count("pk", filter=Q(state=SendChunk.State.PLANNED)),
        ready=Count(
            "pk",
            filter=Q(state=SendChunk.State.PLANNED, not_before__lte=now) & ~Q(credential_id__in=limited_ids),
        ),
        # A rate-limited chunk also waits until the limit's end: counted there, not here as well.
        delayed=Count(
            "pk",
            filter=Q(state=SendChunk.State.PLANNED, not_before__gt=now) & ~Q(credential_id__in=limited_ids),
        ),
        sending=Count("pk", filter=Q(state=SendChunk.State.SENDING)),
        unknown=Count("pk", filter=lost),
        rate_limited=Count("pk", filter=Q(state=SendChunk.State.PLANNED, credential_id__in=limited_ids)),
    )
    oldest = planned.aggregate(at=Min("created_at"))["at"]
    by_credential = {
        row["credential_id"]: row
        for row in SendChunk.objects.filter(
            Q(state__in=(SendChunk.State.PLANNED, SendChunk.State.SENDING)) | lost
        )
        .values("credential_id")
        .annotate(
            planned=Count("pk", filter=Q(state=SendChunk.State.PLANNED)),
            sending=Count("pk", filter=Q(state=SendChunk.State.SENDING)),
            unknown=Count("pk", filter=Q(state=SendChunk.State.UNKNOWN)),
        )
    }
    limits = {row.credential_id: row for row in SendingLimit.objects.filter(credential_id__in=by_credential)}
    credentials = []
    for credential in Credential.objects.filter(pk__in=by_credential):
        row, limit = by_credential[credential.pk], limits.get(credential.pk)
        active = limit is not None and limit.limited_until is not None and limit.limited_until > now
        credentials.append(
            CredentialQueue(
                credential=credential,
                planned=row["planned"],
                sending=row["sending"],
                unknown=row["unknown"],
                limited_until=limit.limited_until if active else None,
                limited_message=limit.limited_message if active else "",
                calls_per_minute=calls_per_minute(credential),
            )
        )
    waiting = SendChunk.objects.filter(state__in=(SendChunk.State.PLANNED, SendChunk.State.SENDING))
    return QueueState(
        **counts,
        oldest_waiting=oldest,
        workers=list(SendingWorker.objects.filter(last_seen__gte=now - WORKER_SEEN_WITHIN)),
        no_worker=bool(counts["ready"]) and no_worker_sending(planned, now=now),
        credentials=credentials,
        chunks=list(waiting.select_related("credential", "batch").order_by("created_at", "id")[:chunk_limit]),
    )
