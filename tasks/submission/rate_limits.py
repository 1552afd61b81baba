"""Per-credential sending limits, shared by every worker through the database.

A credential may make at most `Credential.calls_per_minute` task_post calls a minute (DataForSEO direct:
2,000 when empty, api-reference §7; AIsa: the key's own limit when one is set, else none of ours). The
state is one `SendingLimit` row per credential, updated under a row lock, holding a GCRA "theoretical
arrival time": a call may go when that time is at most `burst` intervals ahead of now, and each call
moves it one interval on. The interval is 60 s / (limit - burst), so no window of 60 s ever holds more
than `limit` calls. A 429 or 40202 from the upstream sets `limited_until` (its Retry-After, 60 s when it
gave none): no worker claims that credential's chunks before then, and nothing fails.
"""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from tasks.models import Credential, SendingLimit

DATAFORSEO_CALLS_PER_MINUTE = 2000
DEFAULT_RETRY_AFTER = 60.0  # seconds, when a 429 / 40202 does not say
# The longest wait a Retry-After sets (seconds): the limits are per minute, so a longer one (or one no date
# can hold) is a gateway's mistake; asking again after it costs one more free 429 at most.
MAX_RETRY_AFTER = 3600.0


def calls_per_minute(credential: Credential) -> int | None:
    """The credential's limit, or None when the product applies none of its own."""
    if credential.calls_per_minute:
        return credential.calls_per_minute
    if credential.kind == Credential.Kind.DATAFORSEO:
        return DATAFORSEO_CALLS_PER_MINUTE
    return None


def sending_slot_take(
    *, credential: Credential, max_wait: float, now: datetime | None = None
) -> float | None:
    """Reserve the next call slot of `credential`; return the seconds to wait before posting (0: now).

    Returns None, reserving nothing, when the slot is more than `max_wait` seconds away or the upstream
    asked this credential to wait: the caller puts its chunk back (`sending_next_slot_at` says until when).
    """
    limit = calls_per_minute(credential)
    if limit is None:
        return 0.0  # a 429 / 40202 still stops the credential: chunk_claim skips it until then
    now = now or timezone.now()
    with transaction.atomic():
        state = _locked(credential)
        if state.limited_until and state.limited_until > now:
            return None
        burst = limit // 100
        interval = timedelta(seconds=60 / (limit - burst))
        arrival = max(state.next_slot_at or now, now)
        wait = (arrival - burst * interval - now).total_seconds()
        if wait > max_wait:
            return None
        state.next_slot_at = arrival + interval
        state.save(update_fields=["next_slot_at", "updated_at"])
        return max(wait, 0.0)


def sending_next_slot_at(*, credential: Credential, now: datetime | None = None) -> datetime:
    """When `credential` may send again: after a limit the upstream set, or its next free slot."""
    now = now or timezone.now()
    state = SendingLimit.objects.filter(credential=credential).first()
    if state is None:
        return now
    limit = calls_per_minute(credential)
    times = [now]
    if state.limited_until:
        times.append(state.limited_until)
    if limit is not None and state.next_slot_at:
        burst = limit // 100
        times.append(state.next_slot_at - burst * timedelta(seconds=60 / (limit - burst)))
    return max(times)


def sending_limited(*, credential_id: int, retry_after: float | None, message: str) -> datetime:
    """The upstream refused a call for its rate (429 / 40202): no worker sends with this credential
    until Retry-After (at most MAX_RETRY_AFTER) has passed. Returns that time. The caller owns the
    transaction."""
    seconds = min(retry_after, MAX_RETRY_AFTER) if retry_after else DEFAULT_RETRY_AFTER
    until = timezone.now() + timedelta(seconds=seconds)
    state = _locked(Credential(pk=credential_id))
    if state.limited_until is None or state.limited_until < until:
        state.limited_until = until
    state.limited_message = message[:500]
    state.save(update_fields=["limited_until", "limited_message", "updated_at"])
    return until


def _locked(credential: Credential) -> SendingLimit:
    state = SendingLimit.objects.select_for_update().filter(credential_id=credential.pk).first()
    if state is None:
        SendingLimit.objects.get_or_create(credential_id=credential.pk)
        state = SendingLimit.objects.select_for_update().get(credential_id=credential.pk)
    return state
