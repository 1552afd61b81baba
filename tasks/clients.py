"""The HTTP client for the DataForSEO "LLM Responses" API, reached directly or through the AIsa gateway.

This is the only module of the product that imports `requests`. It turns HTTP into typed results
(`TaskOutcome`, `ModelInfo`) and one family of exceptions (`UpstreamError` and its subclasses); it knows
timeouts, auth and the response envelope, and nothing about models or views.

Sending policy (api-reference §7, docs/upstream-client.md):

- Every request carries a connect and a read timeout.
- A request is repeated only when it certainly never reached the upstream (connection refused, DNS failure,
  connect timeout) or when the upstream answered HTTP 429 (after its Retry-After). Nothing else is repeated.
- A POST (`task_post`, `live`) costs money and is not idempotent. Once its bytes may have left this machine,
  any failure to get a well-formed reply (read timeout, connection reset, truncated body, HTTP 5xx,
  malformed JSON) raises `UpstreamReplyLost` and the POST is never resent: the upstream may have accepted
  and charged it, and the caller must reconcile (by tag) before resubmitting.
- No secret ever reaches an exception message, repr, traceback or log line: exceptions are built from our
  own wording plus the upstream's scrubbed messages, never from `str()` of a `requests` exception (which can
  carry the request), and they are raised outside the `except` block so no `__context__` points back at it.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ReadTimeoutError,
)
from urllib3.exceptions import ProxyError as Urllib3ProxyError
from urllib3.util.retry import Retry

logger = logging.getLogger("tasks.clients")

USER_AGENT = "aisa-llm-dashboard/0.1"
TASK_POST_CHUNK = 100  # the upstream refuses the 101st task of a task_post with 40006

# Retry budget of one call (see `LLMResponsesClient._send`).
CONNECT_RETRIES = 3  # extra attempts after a connection that certainly sent nothing
RATE_LIMIT_RETRIES = 2  # extra attempts after HTTP 429
TOTAL_RETRIES = 3  # both kinds together
BACKOFF_FACTOR = 0.5  # seconds: 0.5, 1, 2 between connect attempts; 429 without Retry-After likewise

# A live task may run up to 120 s upstream before the first byte of the reply: the read timeout of a
# live call must outlast that, or a paid, finished task would be reported as lost.
LIVE_READ_TIMEOUT = 150.0

_PROVIDER_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_TASK_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_MESSAGE_LIMIT = 300
_EXCERPT_LIMIT = 500


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
        return self.status_class in (StatusClass.CREATED, StatusClass.DONE, StatusClass.PENDING)


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


# --- helpers ------------------------------------------------------------------------------------


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


class _BadEnvelope(Exception):
    """Internal: a reply that is not the expected envelope; carries a short, secret-free reason."""


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
        linked = [
            *current.args,
            getattr(current, "reason", None),
            getattr(current, "original_error", None),
            current.__cause__,
            current.__context__,
        ]
        stack.extend(item for item in linked if isinstance(item, BaseException))


_NOT_SENT = "not_sent"  # certainly never reached the upstream: may be repeated
_NOT_SENT_FINAL = "not_sent_final"  # never reached it, but repeating cannot help (certificate, bad URL)
_MAYBE_SENT = "maybe_sent"  # may have reached it: a POST must not be repeated


def _classify_failure(exc: Exception, *, connect_timeout: float, read_timeout: float) -> tuple[str, str]:
    """(kind, short description) of an exception raised while sending a request.

    Only failures with the unmistakable signature of "no connection was made" count as not sent: requests'
    ConnectTimeout, or a ConnectionError wrapping urllib3's MaxRetryError whose reason is a failed new
    connection (refused, DNS, connect timeout). With the adapter's `Retry(read=False)`, a failure after the
    request was written (reset, remote disconnect, read timeout) surfaces as ProtocolError/ReadTimeout instead
    and so counts as maybe sent. Anything unrecognised counts as maybe sent.
    """
    chain = list(_exception_chain(exc))
    if any(isinstance(item, ssl.SSLCertVerificationError) for item in chain):
        return _NOT_SENT_FINAL, "its TLS certificate could not be verified"
    if isinstance(
        exc,
        (
            requests.exceptions.InvalidURL,
            requests.exceptions.InvalidSchema,
            requests.exceptions.MissingSchema,
            requests.exceptions.URLRequired,
        ),
    ):
        return _NOT_SENT_FINAL, "the request URL is not valid"
    if isinstance(exc, requests.exceptions.InvalidHeader):
        return _NOT_SENT_FINAL, "a request header is not valid"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return _NOT_SENT, f"the connection timed out after {connect_timeout:g} s"
    if isinstance(exc, requests.exceptions.ConnectionError) and not isinstance(
        exc, requests.exceptions.SSLError
    ):
        wrapped = exc.args[0] if exc.args else None
        if isinstance(wrapped, MaxRetryError):
            reason = wrapped.reason
            if isinstance(reason, Urllib3ProxyError):
                reason = reason.original_error
            if isinstance(reason, NameResolutionError):
                return _NOT_SENT, "its host name could not be resolved"
            if isinstance(reason, NewConnectionError):
                if any(isinstance(item, ConnectionRefusedError) for item in chain):
                    return _NOT_SENT, "the connection was refused"
                return _NOT_SENT, "the connection could not be established"
            if isinstance(reason, ConnectTimeoutError):
                return _NOT_SENT, f"the connection timed out after {connect_timeout:g} s"
    if isinstance(exc, requests.exceptions.ReadTimeout) or any(
        isinstance(item, ReadTimeoutError) for item in chain
    ):
        return _MAYBE_SENT, f"no reply within {read_timeout:g} s"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return _MAYBE_SENT, "the reply was cut off"
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return _MAYBE_SENT, "the reply could not be decompressed"
    if isinstance(exc, requests.exceptions.SSLError):
        return _MAYBE_SENT, "the TLS connection failed"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return _MAYBE_SENT, "the connection was closed before a reply arrived"
    return _MAYBE_SENT, f"the request failed unexpectedly ({type(exc).__name__})"


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
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} cannot be sent as JSON")


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _parse_task(raw: Any) -> TaskOutcome:
    """One task object of an envelope → TaskOutcome; raises _BadEnvelope when it is not one."""
    if not isinstance(raw, dict):
        raise _BadEnvelope("a task in the reply is not an object")
    status_code = _as_int(raw.get("status_code"))
    if status_code is None:
        raise _BadEnvelope("a task in the reply has no status_code")
    task_id = raw.get("id")
    if task_id is not None and not isinstance(task_id, str):
        task_id = str(task_id)
    cost_value = raw.get("cost")
    try:
        cost = Decimal("0") if cost_value is None else Decimal(str(cost_value))
    except InvalidOperation:
        raise _BadEnvelope("a task in the reply has a cost that is not a number") from None
    if isinstance(cost_value, bool) or not cost.is_finite():
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
        id=task_id or None,
        status_code=status_code,
        status_message="" if message is None else str(message),
        status_class=classify_status(status_code),
        cost=cost,
        data=data,
        result=result,
        raw=raw,
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
    for raw in tasks:
        code = _as_int(raw.get("status_code")) if isinstance(raw, dict) else None
        if code is not None and classify_status(code) in (
            StatusClass.CREATED,
            StatusClass.DONE,
            StatusClass.PENDING,
        ):
            return True
    return False


def _build_session() -> requests.Session:
    """A Session whose adapters never retry by themselves: every retry is decided in `_send`.

    `Retry(total=0, read=False)`: urllib3 makes exactly one attempt; a connect failure surfaces as
    MaxRetryError (→ requests ConnectionError/ConnectTimeout) and a failure after sending surfaces as
    ProtocolError/ReadTimeoutError, so the two stay distinguishable (`read=0` would blur them).
    """
    session = requests.Session()
    retry = Retry(total=0, connect=0, read=False, redirect=False, status=0, other=0, raise_on_status=False)
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept"] = "application/json"
    return session


_NO_JSON = object()


class _Reply:
    """An HTTP reply read in full: status, body, and the body decoded as JSON (or _NO_JSON)."""

    def __init__(self, *, http_status: int, body: bytes) -> None:
        self.http_status = http_status
        self.body = body
        try:
            self.data: Any = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or absurdly nested
            self.data = _NO_JSON


# --- the client ---------------------------------------------------------------------------------


class LLMResponsesClient:
    """Client of `{base_url}/ai_optimization/{provider}/llm_responses/...` for one credential.

    Auth: `token` (AIsa, Bearer) or `login` + `password` (DataForSEO direct, HTTP Basic). Not thread-safe:
    make one client per job or request.
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
        max_rate_limit_wait: float = 30.0,
        session: requests.Session | None = None,
        live_read_timeout: float | None = None,
        service_name: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
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
            auth_value = f"Bearer {token}"
            secrets = [token]
            default_name = "AIsa"
        elif login and password:
            if ":" in login:
                raise ValueError("A DataForSEO login cannot contain ':'.")
            encoded = base64.b64encode(f"{login}:{password}".encode()).decode("ascii")
            auth_value = f"Basic {encoded}"
            secrets = [password, encoded]
            default_name = "DataForSEO"
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
        # Short secrets would scrub ordinary words; real tokens and passwords are long.
        self._secrets = [secret for secret in secrets if len(secret) >= 6]
        self._session = session if session is not None else _build_session()
        self._sleep = sleep

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
            return cls(
                login=credential.login,
                password=credential.get_secret(),
                service_name="DataForSEO",
                **kwargs,
            )
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
        result = self._get_result(provider, "models")
        models = []
        for item in result:
            if not isinstance(item, dict) or not isinstance(item.get("model_name"), str):
                continue
            models.append(
                ModelInfo(
                    model_name=item["model_name"],
                    reasoning=bool(item.get("reasoning", False)),
                    web_search_supported=bool(item.get("web_search_supported", False)),
                    task_post_supported=bool(item.get("task_post_supported", True)),
                )
            )
        return models

    def tasks_ready(self, provider: str) -> list[dict]:
        """Finished tasks not yet collected (free). Through AIsa this may list other users' tasks."""
        return [item for item in self._get_result(provider, "tasks_ready") if isinstance(item, dict)]

    def task_get(self, provider: str, task_id: str) -> TaskOutcome:
        """One task's current state (free): DONE with result, PENDING, NOT_FOUND, ...

        A top-level "not found" with no task object is returned as a NOT_FOUND outcome too, so the caller
        has one place to look.
        """
        if not isinstance(task_id, str) or not _TASK_ID_RE.fullmatch(task_id):
            raise ValueError("task_id must be an upstream task id (letters, digits, '-' and '_').")
        path = self._path(provider, f"task_get/{quote(task_id, safe='')}")
        reply = self._send("GET", path, function="task_get", provider=provider)
        data = self._get_envelope(reply, function="task_get")
        top_code = _as_int(data.get("status_code"))
        tasks = data.get("tasks")
        if isinstance(tasks, list) and tasks:
            try:
                outcome = _parse_task(tasks[0])
            except _BadEnvelope as exc:
                raise self._malformed(reply, "task_get", str(exc)) from None
            if outcome.id is not None and outcome.id != task_id:
                raise self._malformed(reply, "task_get", "the reply is about a different task")
            if top_code is not None and top_code >= 40000 and outcome.status_class != StatusClass.NOT_FOUND:
                raise self._envelope_error(reply, data, top_code, function="task_get")
            return outcome
        if top_code is not None and classify_status(top_code) == StatusClass.NOT_FOUND:
            message = data.get("status_message")
            raw = {"id": task_id, "status_code": top_code, "status_message": message}
            return TaskOutcome(
                id=task_id,
                status_code=top_code,
                status_message="" if message is None else str(message),
                status_class=StatusClass.NOT_FOUND,
                cost=Decimal("0"),
                data={},
                result=None,
                raw=raw,
            )
        if top_code is not None and top_code >= 40000:
            raise self._envelope_error(reply, data, top_code, function="task_get")
        raise self._malformed(reply, "task_get", "the reply holds no task")

    def user_data(self) -> dict:
        """DataForSEO direct only: the account (`GET /appendix/user_data` → result[0]); balance under
        ["money"]["balance"]."""
        if not self.uses_basic_auth:
            raise UpstreamRejected(
                f"{self.service_name} has no account endpoint: the balance can only be read with a "
                "DataForSEO login and password.",
                status_class=StatusClass.INVALID,
            )
        reply = self._send("GET", f"{self.base_url}/appendix/user_data", function="user_data", provider="-")
        result = self._get_task_result(reply, function="user_data")
        if not result or not isinstance(result[0], dict):
            raise self._malformed(reply, "user_data", "the reply holds no account data")
        return result[0]

    def task_post(self, provider: str, tasks: list[dict]) -> list[TaskOutcome]:
        """Queue tasks (paid): one POST per chunk of ≤ TASK_POST_CHUNK, outcomes in the order of `tasks`.

        Outcomes are matched to tasks by position (the upstream answers in order). Check each outcome's
        `status_class`: CREATED means accepted (keep `id`); INVALID/CONFIG/... means that task was refused.

        On failure of chunk k the chunks before it are in `exc.outcomes_before` and the chunks after it were
        never sent. `UpstreamReplyLost.lost_range` is chunk k: those tasks may have been accepted and charged
        and must be reconciled (by tag) before any resubmission. `UpstreamUnavailable`/`UpstreamRejected`
        mean chunk k was not accepted.
        """
        payloads = self._check_tasks(tasks)
        path = self._path(provider, "task_post")
        outcomes: list[TaskOutcome] = []
        for start in range(0, len(payloads), TASK_POST_CHUNK):
            chunk = payloads[start : start + TASK_POST_CHUNK]
            outcomes.extend(
                self._post_tasks(
                    path,
                    chunk,
                    function="task_post",
                    provider=provider,
                    start=start,
                    total=len(payloads),
                    outcomes_before=outcomes,
                    read_timeout=self.read_timeout,
                )
            )
        return outcomes

    def live(self, provider: str, task: dict) -> TaskOutcome:
        """Run one task now (paid; may take up to 120 s). Uses `live_read_timeout` for the reply."""
        (payload,) = self._check_tasks([task])
        (outcome,) = self._post_tasks(
            self._path(provider, "live"),
            [payload],
            function="live",
            provider=provider,
            start=0,
            total=1,
            outcomes_before=[],
            read_timeout=self.live_read_timeout,
        )
        return outcome

    # --- building requests ----------------------------------------------------------------------

    def _path(self, provider: str, function: str) -> str:
        if not isinstance(provider, str) or not _PROVIDER_RE.fullmatch(provider):
            raise ValueError("provider must be a slug such as 'chat_gpt' or 'claude'.")
        return f"{self.base_url}/ai_optimization/{provider}/llm_responses/{function}"

    @staticmethod
    def _check_tasks(tasks: list[dict]) -> list[dict]:
        if not isinstance(tasks, list) or not all(isinstance(task, dict) for task in tasks):
            raise TypeError("tasks must be a list of dicts (task objects).")
        return tasks

    # --- sending --------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        function: str,
        provider: str,
        body: bytes | None = None,
        read_timeout: float | None = None,
        task_range: tuple[int, int] = (0, 0),
        task_total: int = 0,
        outcomes_before: list[TaskOutcome] | None = None,
    ) -> _Reply:
        """Send one request, repeating it only when that is certainly safe; return the reply or raise.

        Retries are decided here, in plain Python around `session.request`, not by urllib3's Retry on the
        adapter (which is set to make exactly one attempt, see `_build_session`). That keeps the one rule
        that matters for money in one readable place, lets the upstream's Retry-After be capped and reported,
        counts attempts explicitly, and makes every path testable with `responses` (which replaces the
        adapter's `send`, so an adapter-level Retry would never run in tests) and an injected `sleep`.

        - Connection failures that certainly sent nothing (`_classify_failure` → not sent): up to
          CONNECT_RETRIES more attempts, after BACKOFF_FACTOR × 2^n seconds; then UpstreamUnavailable.
        - HTTP 429: up to RATE_LIMIT_RETRIES more attempts after Retry-After (or the backoff when absent),
          as long as the total wait stays within `max_rate_limit_wait`; otherwise UpstreamRateLimited at
          once, with `.retry_after`.
        - At most TOTAL_RETRIES extra attempts overall.
        - Everything else is final: for a POST, any failure after the request may have left raises
          UpstreamReplyLost; for a GET, UpstreamUnavailable.

        Returns a _Reply for any other HTTP status; 2xx bodies must be JSON (else ReplyLost/Malformed),
        3xx/4xx raise UpstreamRejected, 5xx raise ReplyLost (POST) or Unavailable (GET).
        """
        is_post = method == "POST"
        read_timeout = self.read_timeout if read_timeout is None else read_timeout
        timeout = (self.connect_timeout, read_timeout)
        headers = {"Content-Type": "application/json"} if body is not None else None
        outcomes_before = list(outcomes_before or [])
        started = time.monotonic()
        attempts = connect_retries = rate_retries = 0
        waited = 0.0
        while True:
            attempts += 1
            failure: Exception | None = None
            response: requests.Response | None = None
            try:
                response = self._session.request(
                    method,
                    url,
                    data=body,
                    headers=headers,
                    auth=self._auth,
                    timeout=timeout,
                    allow_redirects=False,
                )
            except Exception as exc:  # every failure is classified below, outside this block
                failure = exc
            retries_left = attempts - 1 < TOTAL_RETRIES

            if failure is not None:
                kind, reason = _classify_failure(
                    failure, connect_timeout=self.connect_timeout, read_timeout=read_timeout
                )
                if kind == _NOT_SENT and connect_retries < CONNECT_RETRIES and retries_left:
                    connect_retries += 1
                    self._sleep(BACKOFF_FACTOR * 2 ** (connect_retries - 1))
                    continue
                failure = None  # drop the reference: nothing of it goes into our exception
                if kind == _MAYBE_SENT and is_post:
                    error: UpstreamError = self._reply_lost(
                        reason, function, provider, task_range, task_total, outcomes_before
                    )
                elif kind == _MAYBE_SENT:
                    error = UpstreamUnavailable(
                        self._scrub(
                            f"{self.service_name} did not answer {function} ({reason}); try again later."
                        )
                    )
                else:
                    error = UpstreamUnavailable(
                        self._scrub(
                            f"Could not reach {self.service_name} at {self.host}: {reason}. Nothing was sent."
                        ),
                        outcomes_before=outcomes_before,
                    )
                self._log(method, function, provider, None, started, attempts, type(error).__name__)
                raise error

            assert response is not None
            status = response.status_code
            if status == 429:
                retry_after = _parse_retry_after(response.headers.get("Retry-After"))
                wait = retry_after if retry_after is not None else BACKOFF_FACTOR * 2**rate_retries
                if (
                    rate_retries < RATE_LIMIT_RETRIES
                    and retries_left
                    and waited + wait <= self.max_rate_limit_wait
                ):
                    rate_retries += 1
                    waited += wait
                    response.close()
                    self._sleep(wait)
                    continue
                error = self._rate_limited(response, retry_after, outcomes_before)
                self._log(method, function, provider, status, started, attempts, type(error).__name__)
                raise error

            reply = _Reply(http_status=status, body=response.content)
            error = self._http_error(
                reply, is_post, function, provider, task_range, task_total, outcomes_before
            )
            self._log(
                method, function, provider, status, started, attempts, type(error).__name__ if error else "ok"
            )
            if error is not None:
                raise error
            return reply

    def _http_error(
        self,
        reply: _Reply,
        is_post: bool,
        function: str,
        provider: str,
        task_range: tuple[int, int],
        task_total: int,
        outcomes_before: list[TaskOutcome],
    ) -> UpstreamError | None:
        """The exception an HTTP reply calls for at the transport level, or None for a JSON 2xx."""
        status = reply.http_status
        if 200 <= status < 300:
            if reply.data is not _NO_JSON:
                return None
            if is_post:
                return self._reply_lost(
                    "the reply is not JSON",
                    function,
                    provider,
                    task_range,
                    task_total,
                    outcomes_before,
                    reply=reply,
                )
            return self._malformed(reply, function, "the reply is not JSON")
        if 300 <= status < 500:
            return self._rejection(reply, outcomes_before)
        # 5xx (and anything outside the known ranges): the upstream failed somewhere after receiving.
        summary = self._joined(*self._http_summary(reply))
        if is_post:
            return self._reply_lost(
                summary, function, provider, task_range, task_total, outcomes_before, reply=reply
            )
        return UpstreamUnavailable(
            self._scrub(f"{self.service_name} returned {summary}; try again later."),
            http_status=status,
            body_excerpt=self._excerpt(reply.body),
        )

    def _post_tasks(
        self,
        url: str,
        chunk: list[dict],
        *,
        function: str,
        provider: str,
        start: int,
        total: int,
        outcomes_before: list[TaskOutcome],
        read_timeout: float,
    ) -> list[TaskOutcome]:
        """POST one chunk and return its outcomes in order; never resends (see `_send`).

        Once the POST may have left, every failure becomes an UpstreamError: even a bug in reading the
        reply surfaces as UpstreamReplyLost, never as a stray exception a caller could take for "not sent".
        """
        # Serialised before anything is sent, so a value that cannot be sent fails here, harmlessly.
        body = json.dumps(chunk, ensure_ascii=False, allow_nan=False, default=_json_default).encode()
        task_range = (start, start + len(chunk))
        unexpected: str | None = None
        try:
            reply = self._send(
                "POST",
                url,
                function=function,
                provider=provider,
                body=body,
                read_timeout=read_timeout,
                task_range=task_range,
                task_total=total,
                outcomes_before=outcomes_before,
            )
            return self._chunk_outcomes(
                reply, len(chunk), function, provider, task_range, total, outcomes_before
            )
        except UpstreamError:
            raise
        except Exception as exc:  # a bug after sending must not look like "nothing happened"
            unexpected = type(exc).__name__
        raise self._reply_lost(
            f"an unexpected error occurred while reading it ({unexpected})",
            function,
            provider,
            task_range,
            total,
            outcomes_before,
        )

    def _chunk_outcomes(
        self,
        reply: _Reply,
        sent: int,
        function: str,
        provider: str,
        task_range: tuple[int, int],
        total: int,
        outcomes_before: list[TaskOutcome],
    ) -> list[TaskOutcome]:
        """The outcomes of a POST's JSON reply, one per task sent, in order.

        Accepted tasks are never hidden: a top-level 4xxxx raises UpstreamRejected only when no task in the
        reply shows a success or pending code; any reply that cannot be matched task by task is lost.
        """
        data = reply.data

        def lost(reason: str) -> UpstreamReplyLost:
            return self._reply_lost(
                reason, function, provider, task_range, total, outcomes_before, reply=reply
            )

        if not isinstance(data, dict):
            raise lost("the reply is not a JSON object")
        top_code = _as_int(data.get("status_code"))
        tasks = data.get("tasks")
        if top_code is None:
            raise lost("the reply has no status_code")
        outcomes: list[TaskOutcome] | None = None
        problem = "the reply holds no task list"
        if isinstance(tasks, list):
            if len(tasks) == sent:
                try:
                    outcomes = [_parse_task(raw) for raw in tasks]
                except _BadEnvelope as exc:
                    problem = str(exc)
            else:
                problem = f"the reply lists {len(tasks)} tasks for {sent} sent"
        if 40000 <= top_code < 50000 and not _shows_accepted_task(tasks):
            raise self._envelope_error(
                reply, data, top_code, function=function, is_post=True, outcomes_before=outcomes_before
            )
        if outcomes is None:
            raise lost(problem)
        return outcomes

    def _get_envelope(self, reply: _Reply, *, function: str) -> dict:
        """The envelope of a GET reply; raises Rejected for an AIsa error body, Malformed otherwise."""
        data = reply.data
        if isinstance(data, dict) and isinstance(data.get("error"), dict) and "status_code" not in data:
            raise self._rejection(reply, [])
        if not isinstance(data, dict) or _as_int(data.get("status_code")) is None:
            raise self._malformed(reply, function, "the reply is not the expected envelope")
        return data

    def _get_task_result(self, reply: _Reply, *, function: str) -> list:
        """`tasks[0].result` of a GET whose single task must have succeeded."""
        data = self._get_envelope(reply, function=function)
        top_code = _as_int(data.get("status_code"))
        assert top_code is not None
        if top_code >= 40000:
            raise self._envelope_error(reply, data, top_code, function=function)
        tasks = data.get("tasks")
        if not isinstance(tasks, list) or not tasks:
            raise self._malformed(reply, function, "the reply holds no task")
        try:
            outcome = _parse_task(tasks[0])
        except _BadEnvelope as exc:
            raise self._malformed(reply, function, str(exc)) from None
        if outcome.status_code >= 40000:
            raise self._envelope_error(reply, tasks[0], outcome.status_code, function=function)
        return outcome.result or []

    def _get_result(self, provider: str, function: str) -> list:
        reply = self._send("GET", self._path(provider, function), function=function, provider=provider)
        return self._get_task_result(reply, function=function)

    # --- building exceptions --------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def _clean(self, value: Any) -> str:
        """An upstream-supplied string made safe to show: one line, bounded, no secret."""
        text = " ".join(str(value).split())
        if len(text) > _MESSAGE_LIMIT:
            text = text[: _MESSAGE_LIMIT - 1] + "…"
        return self._scrub(text)

    def _excerpt(self, body: bytes) -> str | None:
        if not body:
            return None
        return self._scrub(body[: _EXCERPT_LIMIT * 4].decode("utf-8", errors="replace")[:_EXCERPT_LIMIT])

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
                " with an empty body" if not reply.body.strip() else " with a body that is not JSON"
            ), None
        if isinstance(data, dict):
            error = data.get("error")
            if isinstance(error, dict):
                kind = error.get("type")
                text = error.get("message")
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

    def _rejection(self, reply: _Reply, outcomes_before: list[TaskOutcome]) -> UpstreamRejected:
        """UpstreamRejected for an HTTP 3xx/4xx (or a 2xx AIsa error body), from whatever body came."""
        status = reply.http_status
        data = reply.data
        error_type = request_id = None
        status_code: int | None = None
        if isinstance(data, dict):
            error = data.get("error")
            if isinstance(error, dict):
                error_type = self._clean(error["type"]) if error.get("type") else None
                request_id = self._clean(error["request_id"]) if error.get("request_id") else None
                status_code = _as_int(error.get("code"))
            else:
                status_code = _as_int(data.get("status_code"))
        head, text = self._http_summary(reply)
        if text is None and " with " in head:
            message = f"{self.service_name} returned {head}"
        else:
            message = f"{self.service_name} rejected the request ({head})" + (f": {text}" if text else "")
        hint = {
            401: "Check the credential.",
            402: "Check the account balance.",
            403: "Check the credential and the account.",
            404: "Check the base URL.",
        }.get(status)
        if 300 <= status < 400:
            hint = "It answered with a redirect: check the base URL."
        if not message.endswith((".", "!", "?")):
            message += "."
        if hint:
            message += f" {hint}"
        if request_id:
            message += f" (request id {request_id})"
        kwargs: dict[str, Any] = {
            "status_code": status_code if status_code is not None else status,
            "http_status": status,
            "error_type": error_type,
            "request_id": request_id,
            "outcomes_before": outcomes_before,
            "body_excerpt": self._excerpt(reply.body),
        }
        if status_code is None or status_code < 10000:
            kwargs["status_class"] = _status_class_for_http(status)
        return UpstreamRejected(self._scrub(message), **kwargs)

    def _rate_limited(
        self, response: requests.Response, retry_after: float | None, outcomes_before: list[TaskOutcome]
    ) -> UpstreamRateLimited:
        reply = _Reply(http_status=response.status_code, body=response.content)
        rejection = self._rejection(reply, outcomes_before)
        head, text = self._http_summary(reply)
        message = f"{self.service_name} is limiting the rate of requests ({self._joined(head, text)})"
        if retry_after is not None:
            message += f"; try again in {retry_after:g} s"
        return UpstreamRateLimited(
            self._scrub(message + "."),
            retry_after=retry_after,
            status_code=rejection.status_code,
            http_status=429,
            error_type=rejection.error_type,
            request_id=rejection.request_id,
            outcomes_before=outcomes_before,
            body_excerpt=rejection.body_excerpt,
        )

    def _envelope_error(
        self,
        reply: _Reply,
        envelope: dict,
        code: int,
        *,
        function: str,
        is_post: bool = False,
        outcomes_before: list[TaskOutcome] | None = None,
    ) -> UpstreamError:
        """The error for an envelope (or its one task) whose status_code fails the whole call.

        40202 → UpstreamRateLimited; a transient code on a (free) GET → UpstreamUnavailable; otherwise
        UpstreamRejected with the code's StatusClass.
        """
        status_message = self._clean(envelope.get("status_message") or "")
        kwargs: dict[str, Any] = {
            "status_code": code,
            "http_status": reply.http_status,
            "outcomes_before": outcomes_before,
            "body_excerpt": self._excerpt(reply.body),
        }
        detail = self._joined(f"status {code}", status_message)
        if code == 40202:
            return UpstreamRateLimited(
                self._scrub(f"{self.service_name} is limiting the rate of requests ({detail})."), **kwargs
            )
        status_class = classify_status(code)
        if status_class == StatusClass.TRANSIENT and not is_post:
            return UpstreamUnavailable(
                self._scrub(f"{self.service_name} could not answer {function} ({detail}); try again later."),
                **kwargs,
            )
        return UpstreamRejected(
            self._scrub(f"{self.service_name} rejected the request ({detail})."),
            status_class=status_class,
            **kwargs,
        )

    def _malformed(self, reply: _Reply, function: str, reason: str) -> UpstreamMalformed:
        return UpstreamMalformed(
            self._scrub(
                f"{self.service_name} answered {function} with HTTP {reply.http_status}, but {reason}."
            ),
            http_status=reply.http_status,
            body_excerpt=self._excerpt(reply.body),
        )

    def _reply_lost(
        self,
        reason: str,
        function: str,
        provider: str,
        task_range: tuple[int, int],
        total: int,
        outcomes_before: list[TaskOutcome],
        *,
        reply: _Reply | None = None,
    ) -> UpstreamReplyLost:
        start, end = task_range
        total = max(total, end)
        if total == 1:
            what = "The task"
        elif (start, end) == (0, total):
            what = f"The {total} tasks"
        else:
            what = f"Tasks {start + 1}–{end} of {total}"
        message = (
            f"The reply of {self.service_name} to {function} ({provider}) was lost: {reason}. "
            f"{what} may have been accepted and charged, and were not sent again: "
            "check for them (by tag) before submitting them again."
        )
        if end < total:
            message += f" Tasks {end + 1}–{total} were not sent."
        return UpstreamReplyLost(
            self._scrub(message),
            lost_range=task_range,
            http_status=reply.http_status if reply is not None else None,
            outcomes_before=outcomes_before,
            body_excerpt=self._excerpt(reply.body) if reply is not None else None,
        )

    def _log(
        self,
        method: str,
        function: str,
        provider: str,
        http_status: int | None,
        started: float,
        attempts: int,
        outcome: str,
    ) -> None:
        elapsed_ms = round((time.monotonic() - started) * 1000)
        logger.log(
            logging.INFO if outcome == "ok" else logging.WARNING,
            "upstream %s %s provider=%s http_status=%s elapsed_ms=%d attempts=%d outcome=%s",
            method,
            function,
            provider,
            http_status if http_status is not None else "-",
            elapsed_ms,
            attempts,
            outcome,
        )
