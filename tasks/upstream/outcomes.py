"""What the upstream said: status classes, `TaskOutcome`, `ModelInfo`, the parsing of one task of an
envelope, and the client's one family of exceptions (`UpstreamError`), with the redaction of secrets
from what they carry.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from urllib.parse import quote, quote_plus

_MESSAGE_LIMIT = 300  # an upstream message shown to a person (in an exception, a status, an event)


_EXCERPT_LIMIT = 500  # the start of an upstream body kept on an exception


_OUTCOME_MESSAGE_LIMIT = 1000  # a per-task status_message, stored as the task's status


_STATUS_CODE_MAX = 2**31 - 1  # a status_code must fit the database's integer column


MAX_TASK_COST = Decimal("10000")  # a per-task cost at or above this is not a number we can believe


class StatusClass(StrEnum):
    """What the product should do with a per-task upstream status_code (api-reference §4)."""

    DONE = "done"
    CREATED = "created"
    PENDING = "pending"
    INVALID = "invalid"
    CONFIG = "config"
    NOT_FOUND = "not_found"
    TRANSIENT = "transient"


_ACCEPTED = frozenset({StatusClass.CREATED, StatusClass.DONE, StatusClass.PENDING})  # may be charged


_PENDING_CODES = frozenset({40601, 40602})


_CONFIG_CODES = frozenset({40100, 40200, 40203, 40205, 40207})


def classify_status(code: int) -> StatusClass:
    """Map an upstream status_code (top-level or per task) to what the product should do with it.

    - 20100 → CREATED (task_post accepted the task); any other 2xxxx → DONE.
    - 40601, 40602 → PENDING (handed / in queue: poll again later).
    - 40101 (engine error), 40202 (rate limit) → TRANSIENT.
    - 40100, 40200, 40203, 40205, 40207 and any other 401xx/402xx → CONFIG (credential or account: do not
      retry, tell the person).
    - 404xx (40401 not found, 40403 expired) → NOT_FOUND, final for that task.
    - any other 4xxxx (40000, 40006, 40501, ...) → INVALID: the request was wrong, do not retry.
    - 5xxxx (50000, 50001, 503xx, unknown) → TRANSIENT: retry later.
    - anything else (unknown ranges) → INVALID, so that nothing unknown is resent automatically.
    """
    if code == 20100:
        return StatusClass.CREATED
    if 20000 <= code < 30000:
        return StatusClass.DONE
    if code in _PENDING_CODES:
        return StatusClass.PENDING
    if code in _TRANSIENT_4XXXX:
        return StatusClass.TRANSIENT
    if code in _CONFIG_CODES or 40100 <= code < 40300:
        return StatusClass.CONFIG
    if 40400 <= code < 40500:
        return StatusClass.NOT_FOUND
    if 40000 <= code < 50000:
        return StatusClass.INVALID
    if 50000 <= code < 60000:
        return StatusClass.TRANSIENT
    return StatusClass.INVALID


def _status_class_for_http(http_status: int | None) -> StatusClass:
    """The StatusClass of an HTTP-level rejection that carries no DataForSEO code."""
    if http_status in (401, 402, 403, 404):  # bad key, no balance, forbidden, wrong base URL
        return StatusClass.CONFIG
    if http_status in (408, 429) or (http_status is not None and http_status >= 500):
        return StatusClass.TRANSIENT
    return StatusClass.INVALID


@dataclass(frozen=True)
class TaskOutcome:
    """One element of an envelope's `tasks` list."""

    id: str | None
    status_code: int
    status_message: str
    status_class: StatusClass
    cost: Decimal  # what the upstream reports for this task; 0 when missing
    data: dict  # the echo of the request (may be {})
    result: list | None
    raw: dict  # the whole task object as received

    @property
    def accepted(self) -> bool:
        """The upstream took the task (created, done or pending): it may be charged."""
        return self.status_class in _ACCEPTED


@dataclass(frozen=True)
class ModelInfo:
    model_name: str
    reasoning: bool
    web_search_supported: bool
    task_post_supported: bool


class _BadEnvelope(Exception):
    """Internal: a reply that is not the expected envelope; carries a short, secret-free reason."""


def _as_int(value: Any) -> int | None:
    """A status code: a non-negative integer (or a string of ASCII digits) that fits a database integer."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip()) if len(value.strip()) <= 10 else None
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= _STATUS_CODE_MAX else None


def _parse_task(raw: Any) -> TaskOutcome:
    """One task object of an envelope → TaskOutcome; raises _BadEnvelope when it is not one.

    What is refused (the whole task object is unusable): no status_code that is a whole number that fits a
    database integer; an id that is not text or a 64-bit number; a cost that is not a finite number from 0
    up to MAX_TASK_COST; a data field that is not an object; a result that is not a list. A status_message
    that is not text is left out. The result's own fields are read by tasks.results.
    """
    if not isinstance(raw, dict):
        raise _BadEnvelope("a task in the reply is not an object")
    status_code = _as_int(raw.get("status_code"))
    if status_code is None:
        raise _BadEnvelope("a task in the reply has no status_code")
    task_id = raw.get("id")
    if not (isinstance(task_id, str | None) or (type(task_id) is int and task_id.bit_length() <= 64)):
        raise _BadEnvelope("a task in the reply has an id that is not text")
    cost_value = raw.get("cost")
    try:
        cost = Decimal("0") if cost_value is None else Decimal(str(cost_value))
    except (InvalidOperation, ValueError):  # not a number, or an integer too long to write out
        cost = Decimal("NaN")
    if isinstance(cost_value, bool | dict | list) or not (cost.is_finite() and 0 <= cost < MAX_TASK_COST):
        raise _BadEnvelope("a task in the reply has a cost that is not a number")
    data = raw.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _BadEnvelope("a task in the reply has a data field that is not an object")
    result = raw.get("result")
    if result is not None and not isinstance(result, list):
        raise _BadEnvelope("a task in the reply has a result that is not a list")
    message = raw.get("status_message")
    return TaskOutcome(
        id=str(task_id) if task_id not in (None, "") else None,
        status_code=status_code,
        status_message=message if isinstance(message, str) else "",
        status_class=classify_status(status_code),
        cost=cost,
        data=data,
        result=result,
        raw=raw,
    )


def _created_without_id(outcome: TaskOutcome, *, queued: bool = False) -> bool:
    """An accepted task (20100; `queued`, for task_post: also one handed over, in queue or done) whose id
    could never be asked about: it may be charged and is lost. (A live answer carries its result.)"""
    return outcome.status_class in (_ACCEPTED if queued else {StatusClass.CREATED}) and not (
        outcome.id is not None and _TASK_ID_RE.fullmatch(outcome.id)
    )


def parse_task_outcome(raw: Any) -> TaskOutcome:
    """One task object from an envelope received some other way (a postback) → TaskOutcome.

    Raises UpstreamMalformed when it is not a task object (no integer status_code, a cost that is not a
    number, ...).
    """
    try:
        return _parse_task(raw)
    except _BadEnvelope as exc:
        reason = str(exc)
    raise UpstreamMalformed(f"The task object received is not usable: {reason}.")


def _shows_accepted_task(tasks: Any) -> bool:
    """Whether any task object in a reply carries a success or pending code (it may have been charged)."""
    if not isinstance(tasks, list):
        return False
    codes = (_as_int(raw.get("status_code")) for raw in tasks if isinstance(raw, dict))
    return any(code is not None and classify_status(code) in _ACCEPTED for code in codes)


_TASK_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


_TRANSIENT_4XXXX = frozenset({40101, 40202})


# --- the client's exceptions ---------------------------------------------------------------------


class UpstreamError(Exception):
    """Base of every failure of an upstream call; str(exc) is a secret-free message for a person.

    `outcomes_before` holds the outcomes of the task_post chunks that succeeded before this failure (empty
    for other calls). Tasks from index `len(outcomes_before)` on were not accepted, except the `lost_range`
    of an `UpstreamReplyLost`.
    """

    def __init__(
        self,
        message: str = "",
        *,
        status_code: int | None = None,
        http_status: int | None = None,
        outcomes_before: list[TaskOutcome] | None = None,
        body_excerpt: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.http_status = http_status
        self.outcomes_before = list(outcomes_before or [])
        self.body_excerpt = body_excerpt  # the start of the upstream's body, scrubbed, for the record

    def __str__(self) -> str:
        return self.message


class UpstreamUnavailable(UpstreamError):
    """Nothing usable came back and nothing was accepted: safe to try again later.

    For a POST this means the request certainly never left (connection refused, DNS, connect timeout, after
    the retries). For a free GET it also covers read timeouts, resets and HTTP 5xx.
    """


class UpstreamReplyLost(UpstreamError):
    """A POST may have been delivered (and charged) but its reply was lost. It was NOT resent.

    `lost_range` = (start, end): indexes of the tasks whose fate is unknown (start inclusive, end
    exclusive). Tasks before `start` are in `outcomes_before`; tasks from `end` on were never sent.
    """

    def __init__(self, message: str = "", *, lost_range: tuple[int, int] = (0, 0), **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.lost_range = lost_range


class UpstreamRejected(UpstreamError):
    """The upstream answered with an error for the whole call (nothing was accepted)."""

    def __init__(
        self,
        message: str = "",
        *,
        error_type: str | None = None,
        status_class: StatusClass | None = None,
        request_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.error_type = error_type  # AIsa's error type, e.g. "authentication_error"
        self.request_id = request_id  # AIsa's request id, for support
        if status_class is None:
            if self.status_code is not None and self.status_code >= 10000:
                status_class = classify_status(self.status_code)
            else:
                status_class = _status_class_for_http(self.http_status)
        self.status_class = status_class


class UpstreamRateLimited(UpstreamRejected):
    """HTTP 429 still there after the allowed waits (or a Retry-After beyond the cap), or envelope 40202.

    `retry_after`: seconds the upstream asked to wait, when it said.
    """

    def __init__(self, message: str = "", *, retry_after: float | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("status_class", StatusClass.TRANSIENT)
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class UpstreamMalformed(UpstreamError):
    """A GET reply that is not the expected JSON envelope (for POSTs this is UpstreamReplyLost)."""


class SecretRedactor:
    """Removes secrets from text that came from the upstream, before it is cut to length.

    Each secret is known in several forms: as it is, URL-encoded (`quote`, `quote_plus`), base64-encoded
    and JSON-escaped (the Basic credential is passed in as a secret of its own). In any of them:

    - a secret of more than FRAGMENT characters is redacted wherever FRAGMENT or more of its consecutive
      characters appear, so a key cut in two by a length limit, or echoed in part, never survives in part;
    - a secret of FRAGMENT characters or fewer is redacted wherever it appears whole, even inside a word
      (shorter runs of it are ordinary text and cannot be told apart from it).

    Each redacted run becomes "[redacted]". `redact(text, limit=n)` redacts, then cuts to n characters
    (ending in "…"): cutting first could leave the part of a secret that straddles the cut, which no
    longer matches the whole secret.
    """

    FRAGMENT = 8
    MARK = "[redacted]"

    def __init__(self, secrets: list[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret:
                forms |= {
                    secret,
                    quote(secret, safe=""),
                    quote_plus(secret),
                    base64.b64encode(secret.encode()).decode("ascii"),
                    json.dumps(secret)[1:-1],
                }
        size = self.FRAGMENT
        self._grams = frozenset(
            form[i : i + size] for form in forms if len(form) > size for i in range(len(form) - size + 1)
        )
        self._whole = sorted((form for form in forms if 0 < len(form) <= size), key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._grams or self._whole)

    def needles(self) -> list[str]:
        """Strings at least one of which any text that holds a secret contains (to find such text in bulk)."""
        return sorted(self._grams) + self._whole

    def redact(self, text: str, *, limit: int | None = None) -> str:
        """`text` without any secret (see the class), cut to `limit` characters after redacting."""
        if limit is None:
            window, cut = text, False
        else:
            # Only the start can be shown; a run of a secret is found whole if it begins in the window.
            window, cut = text[: limit * 4], len(text) > limit * 4
        if self:
            window = self._redacted(window, text[len(window) : len(window) + self.FRAGMENT - 1])
        if limit is not None and (cut or len(window) > limit):
            window = window[: limit - 1] + "…"
        return window

    def _redacted(self, window: str, after: str) -> str:
        """`window` with every run of a secret replaced; `after` (the text that follows it) only lets a run
        that begins in the window and ends past it be found."""
        text, size, length = window + after, self.FRAGMENT, len(window)
        marked = bytearray(length)  # 1 where a character belongs to a secret
        for start in range(min(length, len(text) - size + 1)) if self._grams else ():
            if text[start : start + size] in self._grams:
                end = min(start + size, length)
                marked[start:end] = b"\x01" * (end - start)
        for form in self._whole:
            start = text.find(form)
            while 0 <= start < length:
                end = min(start + len(form), length)
                marked[start:end] = b"\x01" * (end - start)
                start = text.find(form, start + 1)
        for mark in re.finditer(re.escape(self.MARK), window):  # redacted already: not a secret's letters
            marked[mark.start() : mark.end()] = bytes(mark.end() - mark.start())
        if 1 not in marked:
            return window
        parts, position = [], 0
        for run in re.finditer(b"\x01+", marked):
            parts += [window[position : run.start()], self.MARK]
            position = run.end()
        parts.append(window[position:])
        return "".join(parts)
