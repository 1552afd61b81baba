"""The HTTP client for the DataForSEO "LLM Responses" API, reached directly or through the AIsa gateway.

This is the only module of the product that imports `requests`. It turns HTTP into typed results
(`TaskOutcome`, `ModelInfo`) and one family of exceptions (`UpstreamError` and its subclasses); it knows
timeouts, auth and the response envelope, and nothing about models or views.

Sending policy (api-reference §7, docs/upstream-client.md):

- Every request carries a connect and a read timeout.
- Retries are urllib3's `Retry` on the session's adapter (`_UpstreamRetry`, built in `_build_session`): a
  request is repeated only when it certainly never reached the upstream (connection refused, DNS failure,
  connect timeout) or when the upstream answered HTTP 429 (after its Retry-After). Nothing else is repeated.
  `LLMResponsesClient._send` makes one `session.request` and only classifies what came out of it.
- A POST (`task_post`, `live`) costs money and is not idempotent. Once its bytes may have left this machine,
  any failure to get a well-formed reply (read timeout, connection reset, truncated body, HTTP 5xx,
  malformed JSON) raises `UpstreamReplyLost` and the POST is never resent: the upstream may have accepted
  and charged it, and the caller must reconcile (by tag) before resubmitting. `Retry(read=False)` is what
  keeps urllib3 from resending it and keeps such a failure distinguishable from "never sent".
- No secret ever reaches an exception message, repr, traceback or log line: exceptions are built from our
  own wording plus the upstream's scrubbed messages, never from `str()` of a `requests` exception (which can
  carry the request), and they are raised outside the `except` block so no `__context__` points back at it.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import re
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ReadTimeoutError,
    ResponseError,
)
from urllib3.exceptions import ProxyError as Urllib3ProxyError
from urllib3.util.retry import Retry

logger = logging.getLogger("tasks.clients")

USER_AGENT = "aisa-llm-dashboard/0.1"
TASK_POST_CHUNK = 100  # the upstream refuses the 101st task of a task_post with 40006

# The retry budget of one call, given to urllib3 (see `_build_session`).
CONNECT_RETRIES = 3  # extra attempts after a connection that certainly sent nothing
RATE_LIMIT_RETRIES = 2  # extra attempts after HTTP 429
TOTAL_RETRIES = 3  # both kinds together
BACKOFF_FACTOR = 0.5  # urllib3: no wait before the first retry, then 1 s, then 2 s (429: Retry-After first)
MAX_RATE_LIMIT_WAIT = 30.0  # the longest Retry-After waited for (the client's max_rate_limit_wait)

# A live task may run up to 120 s upstream before the first byte of the reply: the read timeout of a
# live call must outlast that, or a paid, finished task would be reported as lost.
LIVE_READ_TIMEOUT = 150.0

_PROVIDER_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_TASK_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_MESSAGE_LIMIT = 300  # an upstream message shown to a person (in an exception, a status, an event)
_EXCERPT_LIMIT = 500  # the start of an upstream body kept on an exception
_OUTCOME_MESSAGE_LIMIT = 1000  # a per-task status_message, stored as the task's status
_STATUS_CODE_MAX = 2**31 - 1  # a status_code must fit the database's integer column
MAX_TASK_COST = Decimal("10000")  # a per-task cost at or above this is not a number we can believe


# --- status codes -------------------------------------------------------------------------------


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
_TRANSIENT_4XXXX = frozenset({40101, 40202})
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


# --- results ------------------------------------------------------------------------------------


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


# --- exceptions ---------------------------------------------------------------------------------


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


# --- secrets ------------------------------------------------------------------------------------


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


# --- parsing ------------------------------------------------------------------------------------


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


def _created_without_id(outcome: TaskOutcome) -> bool:
    """An accepted task (20100) whose id could never be asked about: it may be charged and is lost."""
    return outcome.status_class == StatusClass.CREATED and not (
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


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} cannot be sent as JSON")


_NO_JSON = object()


class _Reply:
    """An HTTP reply read in full: status, body, the body decoded as JSON (or _NO_JSON), and how many
    attempts urllib3 made to get it."""

    def __init__(
        self, *, http_status: int, body: bytes, retry_after: float | None = None, attempts: int = 1
    ) -> None:
        self.http_status = http_status
        self.body = body
        self.retry_after = retry_after
        self.attempts = attempts
        try:
            self.data: Any = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or absurdly nested
            self.data = _NO_JSON


# --- transport ----------------------------------------------------------------------------------


class _UpstreamRetry(Retry):
    """urllib3's Retry with three changes for rate limits (the loop, counting and sleeping stay urllib3's).

    - Only HTTP 429 is retried on its Retry-After. Plain urllib3 also repeats a 413 or 503 that carries the
      header, and a 503 to a POST may come after the tasks were accepted and charged.
    - A Retry-After beyond `retry_after_max` (the client's `max_rate_limit_wait`) ends the retries at once:
      the 429 comes back as the response (→ UpstreamRateLimited) instead of urllib3 sleeping the cap and
      asking again too early.
    - A Retry-After that cannot be read falls back to the backoff instead of raising InvalidHeader, and
      one with decimals or an HTTP date is understood.
    """

    RETRY_AFTER_STATUS_CODES = frozenset({429})

    def get_retry_after(self, response: Any) -> float | None:
        seconds = _parse_retry_after(response.headers.get("Retry-After"))
        return None if seconds is None else min(seconds, self.retry_after_max)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> Retry:
        if response is not None and response.status == 429:
            wait = _parse_retry_after(response.headers.get("Retry-After"))
            if wait is not None and wait > self.retry_after_max:
                raise MaxRetryError(_pool, url, ResponseError(f"Retry-After {wait:g} s is beyond the cap"))
        return super().increment(method, url, response, error, _pool, _stacktrace)


def _build_session(max_rate_limit_wait: float) -> requests.Session:
    """A Session whose adapters carry the whole retry policy, as urllib3's Retry (`_UpstreamRetry`):

    - connection refused, DNS failure, connect timeout (nothing was sent): up to CONNECT_RETRIES more
      attempts, after urllib3's backoff (none, then 1 s, then 2 s);
    - HTTP 429, for any method (a 429 means nothing was processed): up to RATE_LIMIT_RETRIES more attempts,
      each after its Retry-After (or the backoff without one); none when Retry-After exceeds
      `max_rate_limit_wait`. The last 429 comes back as a response (raise_on_status=False);
    - at most TOTAL_RETRIES in all, and nothing else: not after sending (read=False), not other errors,
      not redirects.
    """
    retry = _UpstreamRetry(
        total=TOTAL_RETRIES,
        connect=CONNECT_RETRIES,  # refused, DNS, connect timeout: nothing was sent
        read=False,  # after sending: re-raised as ReadTimeoutError/ProtocolError, never retried (§7)
        status=RATE_LIMIT_RETRIES,
        other=0,
        redirect=0,
        status_forcelist=[429],
        allowed_methods=None,  # a 429 to a POST is retried too: the upstream processed nothing
        backoff_factor=BACKOFF_FACTOR,
        respect_retry_after_header=True,
        retry_after_max=max_rate_limit_wait,
        raise_on_status=False,  # the last 429 comes back as a response, for UpstreamRateLimited
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept"] = "application/json"
    return session


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it wraps (args, urllib3 `reason`/`original_error`, cause, context)."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack and len(seen) < 30:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = (
            *current.args,
            getattr(current, "reason", None),
            getattr(current, "original_error", None),
            current.__cause__,
            current.__context__,
        )
        stack.extend(item for item in linked if isinstance(item, BaseException))


def _classify_failure(exc: Exception, *, connect_timeout: float, read_timeout: float) -> tuple[bool, str]:
    """(may have been sent, short description) of an exception raised by `session.request`.

    urllib3 has already retried what deserved it. Only failures with the unmistakable signature of "no
    connection was made" count as not sent: a certificate that failed verification, a request that could
    not be built, requests' ConnectTimeout, or a ConnectionError wrapping urllib3's MaxRetryError whose
    reason is a failed new connection (refused, DNS, connect timeout). With `Retry(read=False)`, a failure
    after the request was written (reset, remote disconnect, read timeout) surfaces as ProtocolError or
    ReadTimeout instead and so counts as maybe sent. Anything unrecognised counts as maybe sent.
    """
    chain = list(_exception_chain(exc))
    errors = requests.exceptions
    if any(isinstance(item, ssl.SSLCertVerificationError) for item in chain):
        return False, "its TLS certificate could not be verified"
    if isinstance(exc, (errors.InvalidURL, errors.InvalidSchema, errors.MissingSchema, errors.URLRequired)):
        return False, "the request URL is not valid"
    if isinstance(exc, errors.InvalidHeader):
        return False, "a request header is not valid"
    if isinstance(exc, errors.ConnectTimeout):
        return False, f"the connection timed out after {connect_timeout:g} s"
    wrapped = exc.args[0] if exc.args else None
    if isinstance(exc, errors.ConnectionError) and isinstance(wrapped, MaxRetryError):
        reason = wrapped.reason
        if isinstance(reason, Urllib3ProxyError):
            reason = reason.original_error
        if isinstance(reason, NameResolutionError):
            return False, "its host name could not be resolved"
        if isinstance(reason, NewConnectionError):
            if any(isinstance(item, ConnectionRefusedError) for item in chain):
                return False, "the connection was refused"
            return False, "the connection could not be established"
        if isinstance(reason, ConnectTimeoutError):
            return False, f"the connection timed out after {connect_timeout:g} s"
    if isinstance(exc, errors.ReadTimeout) or any(isinstance(item, ReadTimeoutError) for item in chain):
        return True, f"no reply within {read_timeout:g} s"
    if isinstance(exc, errors.ChunkedEncodingError):
        return True, "the reply was cut off"
    if isinstance(exc, errors.ContentDecodingError):
        return True, "the reply could not be decompressed"
    if isinstance(exc, errors.SSLError):
        return True, "the TLS connection failed"
    if isinstance(exc, errors.ConnectionError):
        return True, "the connection was closed before a reply arrived"
    return True, f"the request failed unexpectedly ({type(exc).__name__})"


class _HeaderAuth(requests.auth.AuthBase):
    """Sets a precomputed Authorization header.

    Passing an auth object (rather than a plain header) also stops requests from applying ~/.netrc
    credentials over ours. The repr never shows the value.
    """

    def __init__(self, value: str) -> None:
        self._value = value

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._value
        return request

    def __repr__(self) -> str:
        return "<_HeaderAuth redacted>"


class _SentNotice(io.BytesIO):
    """A request body that says when it has left: http.client sends a file-like body block by block
    until a read returns nothing, so that read comes once every block has gone to the socket, while the
    reply is still to come. A connection failure that sends the body again rewinds it (urllib3's Retry
    seeks back), and its end calls `on_sent` again. Content-Length is still sent (requests measures it).
    """

    def __init__(self, body: bytes, on_sent: Callable[[], None]) -> None:
        super().__init__(body)
        self._on_sent = on_sent

    def read(self, size: int | None = -1) -> bytes:
        block = super().read(size)
        if not block:
            self._on_sent()
        return block


@dataclass
class _Call:
    """One upstream call: what was asked (for the request, its log line and its exceptions) and the reply."""

    method: str
    function: str
    provider: str
    read_timeout: float | None = None  # None: the client's read_timeout
    task_range: tuple[int, int] = (0, 0)  # POSTs: indexes of the tasks this request carries...
    total: int = 0  # ... out of this many in the whole task_post
    outcomes_before: list[TaskOutcome] = field(default_factory=list)
    reply: _Reply | None = None  # set by `_send` once an HTTP reply was read

    @property
    def is_post(self) -> bool:
        return self.method == "POST"


_HTTP_HINTS = {
    401: "Check the credential.",
    402: "Check the account balance.",
    403: "Check the credential and the account.",
    404: "Check the base URL.",
}


# --- the client ---------------------------------------------------------------------------------


class LLMResponsesClient:
    """Client of `{base_url}/ai_optimization/{provider}/llm_responses/...` for one credential.

    Auth: `token` (AIsa, Bearer) or `login` + `password` (DataForSEO direct, HTTP Basic). Not thread-safe:
    make one client per job or request. A `session` passed in is used as it is: its adapters then decide
    the retries (requests' default adapter makes one attempt and never retries).
    """

    def __init__(
        self,
        *,
        base_url: str,
        token: str | None = None,
        login: str | None = None,
        password: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_rate_limit_wait: float = MAX_RATE_LIMIT_WAIT,
        session: requests.Session | None = None,
        live_read_timeout: float | None = None,
        service_name: str | None = None,
    ) -> None:
        parts = urlsplit(base_url or "")
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.username is not None
            or parts.password is not None
            or parts.query
            or parts.fragment
        ):
            raise ValueError("base_url must be an http(s) URL without credentials, query or fragment.")
        if token:
            if login or password:
                raise ValueError("Give either a token (AIsa) or a login and password (DataForSEO), not both.")
            if not all(0x21 <= ord(char) <= 0x7E for char in token):
                raise ValueError("The token contains spaces, line breaks or other invalid characters.")
            auth_value, secrets, default_name = f"Bearer {token}", [token], "AIsa"
        elif login and password:
            if ":" in login:
                raise ValueError("A DataForSEO login cannot contain ':'.")
            encoded = base64.b64encode(f"{login}:{password}".encode()).decode("ascii")
            auth_value, secrets, default_name = f"Basic {encoded}", [password, encoded], "DataForSEO"
        else:
            raise ValueError("Give either a token (AIsa) or a login and password (DataForSEO).")
        for timeout in (connect_timeout, read_timeout, max_rate_limit_wait):
            if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout >= 0):
                raise ValueError("Timeouts and waits must be finite, non-negative numbers of seconds.")
        self.base_url = base_url.rstrip("/")
        self.host = parts.hostname
        self.service_name = service_name or default_name
        self.connect_timeout = float(connect_timeout)
        self.read_timeout = float(read_timeout)
        self.live_read_timeout = float(
            live_read_timeout if live_read_timeout is not None else max(self.read_timeout, LIVE_READ_TIMEOUT)
        )
        self.max_rate_limit_wait = float(max_rate_limit_wait)
        self.uses_basic_auth = not token
        self._auth = _HeaderAuth(auth_value)
        self._redactor = SecretRedactor(secrets)
        self._session = session if session is not None else _build_session(self.max_rate_limit_wait)

    @classmethod
    def for_credential(cls, credential: Any, **kwargs: Any) -> LLMResponsesClient:
        """A client for a `tasks.models.Credential`.

        Raises `tasks.crypto.CredentialKeyError` when the secret cannot be decrypted. Timeouts default to
        settings.UPSTREAM_CONNECT_TIMEOUT / UPSTREAM_READ_TIMEOUT.
        """
        from django.conf import settings

        kwargs.setdefault("connect_timeout", settings.UPSTREAM_CONNECT_TIMEOUT)
        kwargs.setdefault("read_timeout", settings.UPSTREAM_READ_TIMEOUT)
        kwargs.setdefault("base_url", credential.effective_base_url)
        if credential.kind == "aisa":
            return cls(token=credential.get_secret(), service_name="AIsa", **kwargs)
        if credential.kind == "dataforseo":
            secret = credential.get_secret()
            return cls(login=credential.login, password=secret, service_name="DataForSEO", **kwargs)
        raise ValueError(f"Unknown credential kind {credential.kind!r}.")

    def __repr__(self) -> str:
        auth = "basic" if self.uses_basic_auth else "bearer"
        return f"<LLMResponsesClient {self.service_name} {self.base_url} auth={auth}>"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> LLMResponsesClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- public calls -------------------------------------------------------------------------------

    def models(self, provider: str) -> list[ModelInfo]:
        """The provider's model catalog (free)."""
        result = self._get_result(_Call("GET", "models", provider), self._path(provider, "models"))
        return [
            ModelInfo(
                model_name=item["model_name"],
                reasoning=bool(item.get("reasoning", False)),
                web_search_supported=bool(item.get("web_search_supported", False)),
                task_post_supported=bool(item.get("task_post_supported", True)),
            )
            for item in result
            if isinstance(item, dict) and isinstance(item.get("model_name"), str)
        ]

    def tasks_ready(self, provider: str) -> list[dict]:
        """Finished tasks not yet collected (free). Through AIsa this may list other users' tasks."""
        result = self._get_result(_Call("GET", "tasks_ready", provider), self._path(provider, "tasks_ready"))
        return [item for item in result if isinstance(item, dict)]

    def task_get(self, provider: str, task_id: str) -> TaskOutcome:
        """One task's current state (free): DONE with result, PENDING, NOT_FOUND, ...

        A top-level "not found" with no task object is returned as a NOT_FOUND outcome too, so the caller
        has one place to look.
        """
        if not isinstance(task_id, str) or not _TASK_ID_RE.fullmatch(task_id):
            raise ValueError("task_id must be an upstream task id (letters, digits, '-' and '_').")
        call = _Call("GET", "task_get", provider)
        data, top_code = self._get_envelope(call, self._path(provider, f"task_get/{quote(task_id, safe='')}"))
        outcome = self._first_task(call, data)
        if outcome is None:
            if classify_status(top_code) == StatusClass.NOT_FOUND:
                message = data.get("status_message")
                return self._outcome({"id": task_id, "status_code": top_code, "status_message": message})
            if top_code >= 40000:
                raise self._envelope_error(call, data, top_code)
            raise self._unusable(call, "the reply holds no task")
        if outcome.id is not None and outcome.id != task_id:
            raise self._unusable(call, "the reply is about a different task")
        if top_code >= 40000 and outcome.status_class != StatusClass.NOT_FOUND:
            raise self._envelope_error(call, data, top_code)
        return outcome

    def user_data(self) -> dict:
        """DataForSEO direct only: the account (`GET /appendix/user_data` → result[0]); balance under
        ["money"]["balance"]."""
        if not self.uses_basic_auth:
            raise UpstreamRejected(
                f"{self.service_name} has no account endpoint: the balance can only be read with a "
                "DataForSEO login and password.",
                status_class=StatusClass.INVALID,
            )
        call = _Call("GET", "user_data", "-")
        result = self._get_result(call, f"{self.base_url}/appendix/user_data")
        if not result or not isinstance(result[0], dict):
            raise self._unusable(call, "the reply holds no account data")
        return result[0]

    def task_post(
        self, provider: str, tasks: list[dict], *, on_sent: Callable[[], None] | None = None
    ) -> list[TaskOutcome]:
        """Queue tasks (paid): one POST per chunk of ≤ TASK_POST_CHUNK, outcomes in the order of `tasks`.

        `on_sent` is called once a chunk's request has been handed to the socket in full, while its reply
        is awaited (again if a connection failure made it send the chunk again).

        Outcomes are matched to tasks by position (the upstream answers in order). Check each outcome's
        `status_class`: CREATED means accepted (keep `id`); INVALID/CONFIG/... means that task was refused.

        On failure of chunk k the chunks before it are in `exc.outcomes_before` and the chunks after it were
        never sent. `UpstreamReplyLost.lost_range` is chunk k: those tasks may have been accepted and charged
        and must be reconciled (by tag) before any resubmission. `UpstreamUnavailable`/`UpstreamRejected`
        mean chunk k was not accepted.
        """
        self._check_tasks(tasks)
        url = self._path(provider, "task_post")
        outcomes: list[TaskOutcome] = []
        for start in range(0, len(tasks), TASK_POST_CHUNK):
            chunk = tasks[start : start + TASK_POST_CHUNK]
            task_range = (start, start + len(chunk))
            call = _Call("POST", "task_post", provider, None, task_range, len(tasks), list(outcomes))
            outcomes.extend(self._post_tasks(call, url, chunk, on_sent))
        return outcomes

    def live(self, provider: str, task: dict) -> TaskOutcome:
        """Run one task now (paid; may take up to 120 s). Uses `live_read_timeout` for the reply."""
        self._check_tasks([task])
        call = _Call("POST", "live", provider, self.live_read_timeout, task_range=(0, 1), total=1)
        (outcome,) = self._post_tasks(call, self._path(provider, "live"), [task])
        return outcome

    # --- sending and reading ------------------------------------------------------------------------

    def _path(self, provider: str, function: str) -> str:
        if not isinstance(provider, str) or not _PROVIDER_RE.fullmatch(provider):
            raise ValueError("provider must be a slug such as 'chat_gpt' or 'claude'.")
        return f"{self.base_url}/ai_optimization/{provider}/llm_responses/{function}"

    @staticmethod
    def _check_tasks(tasks: list[dict]) -> None:
        if not isinstance(tasks, list) or not all(isinstance(task, dict) for task in tasks):
            raise TypeError("tasks must be a list of dicts (task objects).")

    def _send(
        self, call: _Call, url: str, body: bytes | None = None, on_sent: Callable[[], None] | None = None
    ) -> _Reply:
        """Make one request; return its reply, or raise what it calls for. Writes one log line.

        Any retry (connect failures, 429) happens inside the single `session.request`, in urllib3's
        `Retry` on the adapter. What comes out of it is final, and is only classified here:

        - an exception that certainly sent nothing (`_classify_failure`) → UpstreamUnavailable; one after
          which the request may have arrived → `_unusable` (UpstreamReplyLost for a POST);
        - HTTP 429 (still, after the allowed retries, or with a Retry-After beyond the cap) →
          UpstreamRateLimited with `.retry_after`; any other 3xx/4xx → UpstreamRejected;
        - HTTP 5xx, or a 2xx whose body is not JSON → `_unusable`.
        """
        started = time.monotonic()
        read_timeout = call.read_timeout if call.read_timeout is not None else self.read_timeout
        failure: tuple[bool, str] | None = None
        try:
            response = self._session.request(
                call.method,
                url,
                data=_SentNotice(body, on_sent) if body is not None and on_sent is not None else body,
                headers={"Content-Type": "application/json"} if body is not None else None,
                auth=self._auth,
                timeout=(self.connect_timeout, read_timeout),
                allow_redirects=False,
            )
            retries = getattr(response.raw, "retries", None)
            call.reply = _Reply(
                http_status=response.status_code,
                body=response.content,
                retry_after=_parse_retry_after(response.headers.get("Retry-After")),
                attempts=1 + len(retries.history) if isinstance(retries, Retry) else 1,
            )
        except Exception as exc:  # classified here, raised below: nothing of `exc` goes into our exception
            failure = _classify_failure(exc, connect_timeout=self.connect_timeout, read_timeout=read_timeout)
        reply = call.reply
        error: UpstreamError | None
        if reply is None:
            assert failure is not None
            maybe_sent, reason = failure
            message = f"Could not reach {self.service_name} at {self.host}: {reason}. Nothing was sent."
            error = (
                self._unusable(call, reason)
                if maybe_sent
                else self._error(UpstreamUnavailable, message, call)
            )
        elif 200 <= reply.http_status < 300:
            error = self._unusable(call, "the reply is not JSON") if reply.data is _NO_JSON else None
        elif 300 <= reply.http_status < 500:
            error = self._rejection(call)
        else:  # 5xx (or an unknown range): the upstream failed somewhere after receiving the request
            error = self._unusable(call, self._joined(*self._http_summary(reply)))
        logger.log(
            logging.INFO if error is None else logging.WARNING,
            "upstream %s %s provider=%s http_status=%s elapsed_ms=%d attempts=%s outcome=%s",
            call.method,
            call.function,
            call.provider,
            reply.http_status if reply else "-",
            round((time.monotonic() - started) * 1000),
            reply.attempts if reply else "-",
            type(error).__name__ if error else "ok",
        )
        if error is not None:
            raise error
        assert reply is not None
        return reply

    def _post_tasks(
        self, call: _Call, url: str, chunk: list[dict], on_sent: Callable[[], None] | None = None
    ) -> list[TaskOutcome]:
        """POST one chunk and return its outcomes, one per task sent, in order. Never resends.

        Accepted tasks are never hidden: a top-level 4xxxx raises UpstreamRejected only when no task in the
        reply shows a success or pending code. Once the POST may have left, every other failure is
        UpstreamReplyLost: a reply that cannot be matched task by task, and even a bug in reading it, which
        must never surface as a stray exception a caller could take for "not sent".
        """
        # Serialised before anything is sent, so a value that cannot be sent fails here, harmlessly.
        body = json.dumps(chunk, ensure_ascii=False, allow_nan=False, default=_json_default).encode()
        try:
            data = self._send(call, url, body, on_sent).data
            top_code = _as_int(data.get("status_code")) if isinstance(data, dict) else None
            tasks = data.get("tasks") if isinstance(data, dict) else None
            if not isinstance(data, dict):
                problem = "the reply is not a JSON object"
            elif top_code is None:
                problem = "the reply has no status_code"
            elif 40000 <= top_code < 50000 and not _shows_accepted_task(tasks):
                raise self._envelope_error(call, data, top_code)
            elif not isinstance(tasks, list):
                problem = "the reply holds no task list"
            elif len(tasks) != len(chunk):
                problem = f"the reply lists {len(tasks)} tasks for {len(chunk)} sent"
            else:
                outcomes = [self._outcome(raw) for raw in tasks]
                if not any(_created_without_id(outcome) for outcome in outcomes):
                    return outcomes
                problem = "the reply gives an accepted task no id that task_get could be asked about"
        except UpstreamError:
            raise
        except _BadEnvelope as exc:
            problem = str(exc)
        except Exception as exc:  # a bug after sending must not look like "nothing happened"
            problem = f"an unexpected error occurred while reading it ({type(exc).__name__})"
        raise self._unusable(call, problem)

    def _get_envelope(self, call: _Call, url: str) -> tuple[dict, int]:
        """GET an envelope and its top-level status_code; an AIsa error body is UpstreamRejected."""
        data = self._send(call, url).data
        if isinstance(data, dict) and isinstance(data.get("error"), dict) and "status_code" not in data:
            raise self._rejection(call)
        top_code = _as_int(data.get("status_code")) if isinstance(data, dict) else None
        if top_code is None:
            raise self._unusable(call, "the reply is not the expected envelope")
        return data, top_code

    def _first_task(self, call: _Call, envelope: dict) -> TaskOutcome | None:
        tasks = envelope.get("tasks")
        if not isinstance(tasks, list) or not tasks:
            return None
        try:
            return self._outcome(tasks[0])
        except _BadEnvelope as exc:
            problem = str(exc)
        raise self._unusable(call, problem)

    def _get_result(self, call: _Call, url: str) -> list:
        """`tasks[0].result` of a GET whose envelope and single task must both have succeeded."""
        data, top_code = self._get_envelope(call, url)
        if top_code >= 40000:
            raise self._envelope_error(call, data, top_code)
        outcome = self._first_task(call, data)
        if outcome is None:
            raise self._unusable(call, "the reply holds no task")
        if outcome.status_code >= 40000:
            raise self._envelope_error(call, outcome.raw, outcome.status_code)
        return outcome.result or []

    # --- building exceptions ------------------------------------------------------------------------

    def _error[E: UpstreamError](self, cls: type[E], message: str, call: _Call, **kwargs: Any) -> E:
        """One of our exceptions, its message scrubbed of secrets, with what the call knows."""
        if call.reply is not None:
            kwargs.setdefault("http_status", call.reply.http_status)
            kwargs.setdefault("body_excerpt", self._excerpt(call.reply.body))
        return cls(self._scrub(message), outcomes_before=call.outcomes_before, **kwargs)

    def _scrub(self, text: str) -> str:
        return self._redactor.redact(text)

    def _clean(self, value: Any) -> str:
        """An upstream-supplied string made safe to show: no secret, one line, bounded. Secrets are redacted
        before the text is cut (and again once its whitespace is folded), never after."""
        try:
            text = value if isinstance(value, str) else str(value)
        except (RecursionError, ValueError):  # absurdly nested, or an integer too long to write out
            return ""
        text = self._redactor.redact(text, limit=_MESSAGE_LIMIT * 4)
        return self._redactor.redact(" ".join(text.split()), limit=_MESSAGE_LIMIT)

    def _excerpt(self, body: bytes) -> str | None:
        if not body:
            return None
        text = body[: _EXCERPT_LIMIT * 16].decode("utf-8", errors="replace")
        return self._redactor.redact(text, limit=_EXCERPT_LIMIT)

    def _outcome(self, raw: Any) -> TaskOutcome:
        """`_parse_task`, its status_message redacted (then bounded) and without NUL characters or lone
        surrogates (no database stores them): it becomes the task's status."""
        outcome = _parse_task(raw)
        message = self._redactor.redact(outcome.status_message, limit=_OUTCOME_MESSAGE_LIMIT)
        message = message.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
        return outcome if message == outcome.status_message else replace(outcome, status_message=message)

    def _http_summary(self, reply: _Reply) -> tuple[str, str | None]:
        """What an HTTP reply said, as (head, text).

        ("HTTP 401 authentication_error", "Invalid API key") for AIsa's error body,
        ("HTTP 402, status 40200", "Payment Required.") for a DataForSEO envelope, and
        ("HTTP 500 with a body that is not JSON", None) when the body says nothing usable.
        """
        head = f"HTTP {reply.http_status}"
        data = reply.data
        if data is _NO_JSON:
            return head + (
                " with a body that is not JSON" if reply.body.strip() else " with an empty body"
            ), None
        if isinstance(data, dict):
            error = data.get("error")
            if isinstance(error, dict):
                kind, text = error.get("type"), error.get("message")
                return head + (f" {self._clean(kind)}" if kind else ""), self._clean(text) if text else None
            if isinstance(error, str) and error:
                return head, self._clean(error)
            code = _as_int(data.get("status_code"))
            if code is not None:
                text = data.get("status_message")
                return f"{head}, status {code}", self._clean(text) if text else None
            for key in ("message", "detail"):
                if isinstance(data.get(key), str) and data[key]:
                    return head, self._clean(data[key])
        return head + " with an unexpected JSON body", None

    @staticmethod
    def _joined(head: str, text: str | None) -> str:
        return f"{head}: {text}" if text else head

    def _rejection(self, call: _Call) -> UpstreamRejected:
        """UpstreamRejected for an HTTP 3xx/4xx (or a 2xx AIsa error body), from whatever body came;
        UpstreamRateLimited for an HTTP 429."""
        reply = call.reply
        assert reply is not None
        data = reply.data if isinstance(reply.data, dict) else {}
        error = data.get("error")
        fields = error if isinstance(error, dict) else {"code": data.get("status_code")}
        error_type = self._clean(fields["type"]) if fields.get("type") else None
        request_id = self._clean(fields["request_id"]) if fields.get("request_id") else None
        status_code = _as_int(fields.get("code"))
        kwargs = {"status_code": reply.http_status if status_code is None else status_code}
        kwargs |= {"error_type": error_type, "request_id": request_id}
        head, text = self._http_summary(reply)
        if reply.http_status == 429:
            message = f"{self.service_name} is limiting the rate of requests ({self._joined(head, text)})"
            if reply.retry_after is not None:
                message += f"; try again in {reply.retry_after:g} s"
            return self._error(
                UpstreamRateLimited, message + ".", call, retry_after=reply.retry_after, **kwargs
            )
        if text is None and " with " in head:
            message = f"{self.service_name} returned {head}"
        else:
            message = f"{self.service_name} rejected the request ({head})" + (f": {text}" if text else "")
        if not message.endswith((".", "!", "?")):
            message += "."
        if 300 <= reply.http_status < 400:
            message += " It answered with a redirect: check the base URL."
        elif reply.http_status in _HTTP_HINTS:
            message += f" {_HTTP_HINTS[reply.http_status]}"
        if request_id:
            message += f" (request id {request_id})"
        return self._error(UpstreamRejected, message, call, **kwargs)

    def _envelope_error(self, call: _Call, envelope: dict, code: int) -> UpstreamError:
        """The error for an envelope (or its one task) whose status_code fails the whole call.

        40202 → UpstreamRateLimited; a transient code on a (free) GET → UpstreamUnavailable; otherwise
        UpstreamRejected with the code's StatusClass.
        """
        detail = self._joined(f"status {code}", self._clean(envelope.get("status_message") or ""))
        status_class = classify_status(code)
        if code == 40202:
            message = f"{self.service_name} is limiting the rate of requests ({detail})."
            return self._error(UpstreamRateLimited, message, call, status_code=code)
        if status_class == StatusClass.TRANSIENT and not call.is_post:
            message = f"{self.service_name} could not answer {call.function} ({detail}); try again later."
            return self._error(UpstreamUnavailable, message, call, status_code=code)
        message = f"{self.service_name} rejected the request ({detail})."
        return self._error(UpstreamRejected, message, call, status_code=code, status_class=status_class)

    def _unusable(self, call: _Call, reason: str) -> UpstreamError:
        """No usable reply to a request that may have reached the upstream.

        POST: UpstreamReplyLost. The tasks of `call.task_range` may have been accepted and charged and were
        not sent again; tasks after them were never sent. GET (free, harmless to ask again later):
        UpstreamMalformed for a 2xx reply that is not what was expected, UpstreamUnavailable otherwise.
        """
        reply = call.reply
        if not call.is_post and reply is not None and 200 <= reply.http_status < 300:
            message = (
                f"{self.service_name} answered {call.function} with HTTP {reply.http_status}, but {reason}."
            )
            return self._error(UpstreamMalformed, message, call)
        if not call.is_post:
            message = f"{self.service_name} could not answer {call.function} ({reason}); try again later."
            return self._error(UpstreamUnavailable, message, call)
        start, end = call.task_range
        total = max(call.total, end)
        if total == 1:
            what = "The task"
        elif (start, end) == (0, total):
            what = f"The {total} tasks"
        else:
            what = f"Tasks {start + 1}–{end} of {total}"
        message = (
            f"The reply of {self.service_name} to {call.function} ({call.provider}) was lost: {reason}. "
            f"{what} may have been accepted and charged, and were not sent again: "
            "check for them (by tag) before submitting them again."
        )
        if end < total:
            message += f" Tasks {end + 1}–{total} were not sent."
        return self._error(UpstreamReplyLost, message, call, lost_range=call.task_range)
