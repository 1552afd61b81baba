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
  task_refused    task_post (the default) or live: the tasks of the call that match (`prompt_contains` in
                  their user_prompt, and/or at `position`, from 0) get task status `status_code` (default
                  50000), cost 0, and are not processed; the others are accepted as usual. A firing is one
                  call with a match: times=1 refuses a task once, and the product's resend of it is
                  accepted.

    faults.inject("task_refused", prompt_contains="[refuse]")           # that task of the next call: 50000
    faults.inject("task_refused", position=0, status_code=50301, times=3)  # the first task of 3 calls
    faults.inject("task_refused", function="live", status_code=40202)  # the next live call's task: 40202
"""

from django.db import transaction
from django.db.models import F

from sandbox.models import SandboxFault

MODES = tuple(SandboxFault.Mode.values)
FUNCTIONS = ("models", "task_post", "tasks_ready", "task_get", "live", "user_data")
# Modes after which a POST has already been processed (and charged) when the reply goes wrong.
ACCEPTED_FIRST = frozenset({"hang", "http500", "malformed", "reset"})
# Refuses some tasks of a call rather than the call: taken by `take_task_refusals`, never by `take`.
TASK_REFUSED = SandboxFault.Mode.TASK_REFUSED
REFUSING_FUNCTIONS = ("task_post", "live")  # the calls a `task_refused` fault can refuse tasks of


def inject(
    mode: str,
    *,
    function: str | None = None,
    provider: str | None = None,
    times: int = 1,
    seconds: float = 30.0,
    retry_after: int = 1,
    status_code: int = 50000,
    prompt_contains: str = "",
    position: int | None = None,
) -> SandboxFault:
    """Make the next `times` requests to `function` (None: any) of `provider` (None: any) fail as `mode`;
    `task_refused`: the matching tasks of the next `times` task_post (or live) calls that have one."""
    if mode not in MODES:
        raise ValueError(f"Unknown fault mode {mode!r}; choose one of {', '.join(MODES)}.")
    if function is not None and function not in FUNCTIONS:
        raise ValueError(f"Unknown function {function!r}; choose one of {', '.join(FUNCTIONS)}.")
    if times < 1 or seconds < 0 or retry_after < 0:
        raise ValueError("times must be at least 1; seconds and retry_after not negative.")
    if mode == TASK_REFUSED:
        if function not in (None, *REFUSING_FUNCTIONS):
            raise ValueError(
                "task_refused refuses tasks of a task_post or a live call; give no other function."
            )
        if not isinstance(status_code, int) or not 40000 <= status_code < 60000:
            raise ValueError("status_code must be a task error code, 40000 to 59999 (50000: internal error).")
        if not isinstance(prompt_contains, str) or len(prompt_contains) > 200:
            raise ValueError("prompt_contains must be text of at most 200 characters.")
        if position is not None and (not isinstance(position, int) or not 0 <= position < 100):
            raise ValueError("position must be the index of a task in the call, 0 to 99.")
        function = function or "task_post"
    elif prompt_contains or position is not None or status_code != 50000:
        raise ValueError("status_code, prompt_contains and position are for the task_refused mode.")
    return SandboxFault.objects.create(
        mode=mode,
        function=function or "",
        provider=provider or "",
        remaining=times,
        seconds=seconds,
        retry_after=retry_after,
        status_code=status_code,
        prompt_contains=prompt_contains,
        position=position,
    )


def clear() -> int:
    """Remove every pending fault; returns how many there were."""
    deleted, _ = SandboxFault.objects.all().delete()
    return deleted


def pending() -> list[SandboxFault]:
    return list(SandboxFault.objects.all())


def take(*, function: str, provider: str = "") -> SandboxFault | None:
    """Consume one firing of the oldest fault matching this request (a `task_refused` one is taken by
    `take_task_refusals` instead), or None."""
    candidates = SandboxFault.objects.filter(
        function__in=["", function], provider__in=["", provider]
    ).exclude(mode=TASK_REFUSED)
    for fault in candidates.order_by("created_at", "id"):
        if _fire(fault):
            return fault
    return None


def take_task_refusals(*, function: str, provider: str, tasks: list) -> dict[int, int]:
    """The tasks of this task_post (or live call) that `task_refused` faults refuse: {index: task status
    code}. Each fault with a matching task in the call uses up one firing (the oldest fault first, if two
    match)."""
    refused: dict[int, int] = {}
    candidates = SandboxFault.objects.filter(
        mode=TASK_REFUSED, function=function, provider__in=["", provider]
    )
    for fault in candidates.order_by("created_at", "id"):
        hits = [i for i, fields in enumerate(tasks) if i not in refused and _refuses(fault, i, fields)]
        if hits and _fire(fault):
            refused.update(dict.fromkeys(hits, fault.status_code))
    return refused


def _refuses(fault: SandboxFault, index: int, fields) -> bool:
    prompt = fields.get("user_prompt") if isinstance(fields, dict) else None
    if fault.position is not None and fault.position != index:
        return False
    return not fault.prompt_contains or (isinstance(prompt, str) and fault.prompt_contains in prompt)


def _fire(fault: SandboxFault) -> bool:
    """Use up one firing of `fault`; False if another request used the last one first. The conditional
    UPDATE makes a firing count once even when several workers race for it."""
    with transaction.atomic():
        won = SandboxFault.objects.filter(pk=fault.pk, remaining__gt=0).update(remaining=F("remaining") - 1)
        if won:
            SandboxFault.objects.filter(pk=fault.pk, remaining=0).delete()
    return bool(won)
