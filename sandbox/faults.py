"""Fault injection: make the stand-in misbehave on purpose, for the product's tests.

Faults are rows in the database, so they reach every gunicorn worker and a live server started by pytest.
Each fault fires on the next `times` matching requests (by function and provider) and then disappears.

    from sandbox import faults
    faults.inject("http500", function="task_post")           # the next task_post is accepted, then HTTP 500
    faults.inject("hang", function="task_get", seconds=2)    # the next task_get sleeps 2 s, then answers
    faults.inject("rate_limit", times=3, retry_after=2)      # the next 3 requests get HTTP 429
    faults.clear()

The same over HTTP: POST /sandbox/_faults/ with {"mode": ..., "function": ..., "times": ...}, DELETE to clear.

Modes (a POST that is "accepted first" creates and charges its tasks before the reply goes wrong, like a real
reply lost in transit; GETs never change state when their reply goes wrong):
  hang            sleep `seconds` (default 30), then answer normally; POSTs are accepted before the sleep
  http500         HTTP 500 with a plain-text body; POSTs accepted first
  malformed       HTTP 200 with a truncated JSON body; POSTs accepted first
  reset           the connection is closed without any reply; POSTs accepted first
  rate_limit      HTTP 429 with Retry-After and X-RateLimit-* headers; nothing is processed
  internal_error  HTTP 200 envelope, every task status 50000 "Internal Error.", cost 0; nothing is processed
"""

from django.db import transaction
from django.db.models import F

from sandbox.models import SandboxFault

MODES = tuple(SandboxFault.Mode.values)
FUNCTIONS = ("models", "task_post", "tasks_ready", "task_get", "live", "user_data")
# Modes after which a POST has already been processed (and charged) when the reply goes wrong.
ACCEPTED_FIRST = frozenset({"hang", "http500", "malformed", "reset"})


def inject(
    mode: str,
    *,
    function: str | None = None,
    provider: str | None = None,
    times: int = 1,
    seconds: float = 30.0,
    retry_after: int = 1,
) -> SandboxFault:
    """Make the next `times` requests to `function` (None: any) of `provider` (None: any) fail as `mode`."""
    if mode not in MODES:
        raise ValueError(f"Unknown fault mode {mode!r}; choose one of {', '.join(MODES)}.")
    if function is not None and function not in FUNCTIONS:
        raise ValueError(f"Unknown function {function!r}; choose one of {', '.join(FUNCTIONS)}.")
    if times < 1 or seconds < 0 or retry_after < 0:
        raise ValueError("times must be at least 1; seconds and retry_after not negative.")
    return SandboxFault.objects.create(
        mode=mode,
        function=function or "",
        provider=provider or "",
        remaining=times,
        seconds=seconds,
        retry_after=retry_after,
    )


def clear() -> int:
    """Remove every pending fault; returns how many there were."""
    deleted, _ = SandboxFault.objects.all().delete()
    return deleted


def pending() -> list[SandboxFault]:
    return list(SandboxFault.objects.all())


def take(*, function: str, provider: str = "") -> SandboxFault | None:
    """Consume one firing of the oldest fault matching this request, or None.

    The conditional UPDATE makes a firing count once even when several workers race for it.
    """
    candidates = SandboxFault.objects.filter(function__in=["", function], provider__in=["", provider])
    for fault in candidates.order_by("created_at", "id"):
        with transaction.atomic():
            won = SandboxFault.objects.filter(pk=fault.pk, remaining__gt=0).update(
                remaining=F("remaining") - 1
            )
            if not won:
                continue
            SandboxFault.objects.filter(pk=fault.pk, remaining=0).delete()
        return fault
    return None
