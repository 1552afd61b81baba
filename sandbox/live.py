"""Live calls as the upstream runs them: each takes a while (SANDBOX_LIVE_DELAY seconds, a few in
development and a fraction of a second in tests), and an account may have at most 30 of one provider's
live calls running at once (api-reference §6); the 31st is refused with a 429 and Retry-After, as a rate
limit, and nothing of it is processed or charged.

The count is kept in this process: the stand-in runs in one (the development server, or the tests' live
server). Under several gunicorn processes each would count its own.
"""

import threading
import time
from collections import Counter
from contextlib import contextmanager

from django.conf import settings

MAX_CONCURRENT_LIVE = 30

_lock = threading.Lock()
_running: Counter = Counter()
_peak: Counter = Counter()


@contextmanager
def live_slot(*, account: str, provider: str):
    """Yield True while holding one of the account's live slots for `provider`, or False when all 30 are
    taken (the caller refuses the call)."""
    key = (account, provider)
    with _lock:
        if _running[key] >= MAX_CONCURRENT_LIVE:
            taken = False
        else:
            _running[key] += 1
            _peak[key] = max(_peak[key], _running[key])
            taken = True
    try:
        yield taken
    finally:
        if taken:
            with _lock:
                _running[key] -= 1


def live_delay() -> None:
    """The time a live answer takes (the model writing it)."""
    delay = float(getattr(settings, "SANDBOX_LIVE_DELAY", 0) or 0)
    if delay > 0:
        time.sleep(delay)


def peak_concurrency(*, account: str | None = None, provider: str | None = None) -> int:
    """The most live calls that ran at once (for tests and the bench), over matching accounts/providers."""
    with _lock:
        return max(
            (n for (a, p), n in _peak.items() if account in (None, a) and provider in (None, p)), default=0
        )


def peak_reset() -> None:
    with _lock:
        _peak.clear()
