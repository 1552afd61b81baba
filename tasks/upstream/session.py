"""The upstream client's HTTP session: retries (urllib3's Retry), auth, and the classification of failures."""

from __future__ import annotations

import json
import math
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

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

from tasks.upstream.outcomes import TaskOutcome

# The retry budget of one call, given to urllib3 (see `_build_session`).
USER_AGENT = "aisa-llm-dashboard/0.1"
CONNECT_RETRIES = 3  # extra attempts after a connection that certainly sent nothing


RATE_LIMIT_RETRIES = 2  # extra attempts after HTTP 429


TOTAL_RETRIES = 3  # both kinds together


BACKOFF_FACTOR = 0.5  # urllib3: no wait before the first retry, then 1 s, then 2 s (429: Retry-After first)


MAX_RATE_LIMIT_WAIT = 30.0  # the longest Retry-After waited for (the client's max_rate_limit_wait)


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
    # Up to 30 live calls may share one client's session (tasks/submission/live.py): keep a connection each.
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=30)
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
