"""Turning a failed or unusable upstream reply into the client's exceptions, scrubbed of secrets (a mixin of
`LLMResponsesClient`, which holds the redactor, the service's name and the call)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from tasks.upstream.outcomes import (
    _EXCERPT_LIMIT,
    _MESSAGE_LIMIT,
    _OUTCOME_MESSAGE_LIMIT,
    StatusClass,
    TaskOutcome,
    UpstreamError,
    UpstreamMalformed,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamReplyLost,
    UpstreamUnavailable,
    _as_int,
    _parse_task,
    classify_status,
)
from tasks.upstream.session import (
    _HTTP_HINTS,
    _NO_JSON,
    _Call,
    _Reply,
)

logger = logging.getLogger(__name__)


class ReplyErrors:
    """The exception-building half of `LLMResponsesClient`."""

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
        return self._outcomes([raw])[0]

    def _outcomes(self, raws: list) -> list[TaskOutcome]:
        """`_outcome` of every task object of one reply; a message that repeats (each accepted task of a
        chunk says "Task Created.") is made safe once."""
        safe: dict[str, str] = {}
        outcomes = []
        for raw in raws:
            outcome = _parse_task(raw)
            original = outcome.status_message
            if original not in safe:
                message = self._redactor.redact(original, limit=_OUTCOME_MESSAGE_LIMIT)
                safe[original] = message.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
            message = safe[original]
            outcomes.append(outcome if message == original else replace(outcome, status_message=message))
        return outcomes

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
        elif end - start == 1:
            what = f"Task {end} of {total}"
        else:
            what = f"Tasks {start + 1}–{end} of {total}"
        was, them = ("was", "it") if end - start == 1 else ("were", "them")
        how = "" if call.function == "live" else " (by tag)"  # no tasks_ready lists a live task
        message = (
            f"The reply of {self.service_name} to {call.function} ({call.provider}) was lost: {reason}. "
            f"{what} may have been accepted and charged, and {was} not sent again: "
            f"check for {them}{how} before submitting {them} again."
        )
        if end < total:
            message += f" Tasks {end + 1}–{total} were not sent."
        return self._error(UpstreamReplyLost, message, call, lost_range=call.task_range)
