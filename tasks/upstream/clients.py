"""The HTTP client for the DataForSEO "LLM Responses" API, reached directly or through the AIsa gateway.

This module and tasks/upstream/session.py are the only ones of the product that import `requests`. The
client turns HTTP into typed results (`TaskOutcome`, `ModelInfo`) and one family of exceptions
(`UpstreamError` and its subclasses); it knows timeouts, auth and the response envelope, and nothing
about models or views.

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
import json
import logging
import math
import re
import time
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from urllib3.util.retry import Retry

from tasks.upstream.failures import ReplyErrors
from tasks.upstream.outcomes import (
    _TASK_ID_RE,
    ModelInfo,
    SecretRedactor,
    StatusClass,
    TaskOutcome,
    UpstreamError,
    UpstreamRejected,
    UpstreamUnavailable,
    _as_int,
    _BadEnvelope,
    _created_without_id,
    _shows_accepted_task,
    classify_status,
)
from tasks.upstream.session import (
    _NO_JSON,
    MAX_RATE_LIMIT_WAIT,
    _build_session,
    _Call,
    _classify_failure,
    _HeaderAuth,
    _json_default,
    _parse_retry_after,
    _Reply,
)

logger = logging.getLogger(__name__)


TASK_POST_CHUNK = 100  # the upstream refuses the 101st task of a task_post with 40006


# A live task may run up to 120 s upstream before the first byte of the reply: the read timeout of a
# live call must outlast that, or a paid, finished task would be reported as lost.
LIVE_READ_TIMEOUT = 150.0


_PROVIDER_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")


class LLMResponsesClient(ReplyErrors):
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
                reasoning=_flag(item.get("reasoning"), default=False),
                web_search_supported=_flag(item.get("web_search_supported"), default=False),
                task_post_supported=_flag(item.get("task_post_supported"), default=True),
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

    def task_post(self, provider: str, tasks: list[dict]) -> list[TaskOutcome]:
        """Queue tasks (paid): one POST per chunk of ≤ TASK_POST_CHUNK, outcomes in the order of `tasks`.

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
            outcomes.extend(self._post_tasks(call, url, chunk))
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

    def _send(self, call: _Call, url: str, body: bytes | None = None) -> _Reply:
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
                data=body,
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

    def _post_tasks(self, call: _Call, url: str, chunk: list[dict]) -> list[TaskOutcome]:
        """POST one chunk and return its outcomes, one per task sent, in order. Never resends.

        Accepted tasks are never hidden: a top-level 4xxxx raises UpstreamRejected only when no task in the
        reply shows a success or pending code. Once the POST may have left, every other failure is
        UpstreamReplyLost: a reply that cannot be matched task by task, and even a bug in reading it, which
        must never surface as a stray exception a caller could take for "not sent".
        """
        # Serialised before anything is sent, so a value that cannot be sent fails here, harmlessly.
        body = json.dumps(chunk, ensure_ascii=False, allow_nan=False, default=_json_default).encode()
        try:
            data = self._send(call, url, body).data
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
                outcomes = self._outcomes(tasks)
                queued = call.function == "task_post"
                if not any(_created_without_id(outcome, queued=queued) for outcome in outcomes):
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


def _flag(value: Any, *, default: bool) -> bool:
    """A catalog flag: true/false, also written as text ("false" is not true) or 0/1; the documented
    default when it is missing or unreadable."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return default


def client_for(credential: Any, **kwargs: Any) -> LLMResponsesClient:
    """The client for a stored credential: the one place the product makes one (tests replace
    `LLMResponsesClient` here to stand in for the upstream). `kwargs` go to the client (timeouts, waits)."""
    return LLMResponsesClient.for_credential(credential, **kwargs)
