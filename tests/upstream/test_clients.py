"""Unit tests of the upstream client (tasks/clients.py), with `responses` standing in for the upstream.

`responses` replaces the adapter's connection handling: it replays urllib3's status retries (429) without
sleeping, but never runs connect retries, backoff, Retry-After sleeps or real socket failures. The tests at
the end ("the real transport") pin those over real sockets, against small HTTP servers on 127.0.0.1.
"""

import base64
import json
import logging
import socket
import struct
import threading
import time
import traceback
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, quote_plus

import pytest
import requests
import responses
import urllib3.util.connection
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError, ProtocolError

from tasks.upstream import clients, failures, session
from tasks.upstream.clients import TASK_POST_CHUNK, LLMResponsesClient
from tasks.upstream.outcomes import (
    ModelInfo,
    StatusClass,
    TaskOutcome,
    UpstreamError,
    UpstreamMalformed,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamReplyLost,
    UpstreamUnavailable,
    classify_status,
    parse_task_outcome,
)

AISA = "https://api.aisa.one/apis/v1/dataforseo"
DFS = "https://api.dataforseo.com/v3"
TOKEN = "sk-SECRET-123"
LOGIN = "team@example.com"
PASSWORD = "pw-SECRET-456"
SECRETS = (TOKEN, PASSWORD, "dGVhbUBleGFtcGxlLmNvbTpwdy1TRUNSRVQtNDU2")  # the last: base64 of login:password

POST_URL = f"{AISA}/ai_optimization/chat_gpt/llm_responses/task_post"
LIVE_URL = f"{AISA}/ai_optimization/chat_gpt/llm_responses/live"
TASK_ID = "07171158-1535-0612-0000-edcdefadd850"
TASK_GET_URL = f"{AISA}/ai_optimization/chat_gpt/llm_responses/task_get/{TASK_ID}"


# --- helpers and fixtures -----------------------------------------------------------------------


def upstream_task(
    task_id="t-1", status_code=20100, message="Task Created.", cost=0.0102, data=None, result=None
):
    return {
        "id": task_id,
        "status_code": status_code,
        "status_message": message,
        "time": "0.01 sec.",
        "cost": cost,
        "result_count": 0 if result is None else len(result),
        "path": ["v3", "ai_optimization", "chat_gpt", "llm_responses", "task_post"],
        "data": data if data is not None else {"api": "ai_optimization", "se": "chat_gpt"},
        "result": result,
    }


def envelope(tasks, status_code=20000, message="Ok."):
    return {
        "version": "0.1.20250526",
        "status_code": status_code,
        "status_message": message,
        "time": "0.05 sec.",
        "cost": 0,
        "tasks_count": len(tasks),
        "tasks_error": 0,
        "tasks": tasks,
    }


def prompt(n=0):
    return {"user_prompt": f"prompt {n}", "model_name": "gpt-4.1-mini", "tag": f"tag-{n}"}


def connection_refused():
    """What requests really raises when nothing listens (see test_real_refused_port_...)."""
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")
    reason.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return requests.exceptions.ConnectionError(MaxRetryError(None, "/x", reason))


def echo_created(request):
    """A task_post stand-in: one 20100 per task sent, with the task's tag in its id."""
    sent = json.loads(request.body)
    tasks = [upstream_task(f"id-{task['tag']}", data=task) for task in sent]
    return 200, {}, json.dumps(envelope(tasks))


def assert_no_secret(exc: BaseException, caplog=None):
    texts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    if caplog is not None:
        texts.append(caplog.text)
    for text in texts:
        for secret in SECRETS:
            assert secret not in text
    assert exc.__context__ is None or exc.__suppress_context__
    assert exc.__cause__ is None


@pytest.fixture
def client():
    return LLMResponsesClient(base_url=AISA, token=TOKEN)


@pytest.fixture
def dfs_client():
    return LLMResponsesClient(base_url=DFS, login=LOGIN, password=PASSWORD)


@pytest.fixture
def upstream():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


# --- status classification ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (20000, StatusClass.DONE),
        (20100, StatusClass.CREATED),
        (40601, StatusClass.PENDING),
        (40602, StatusClass.PENDING),
        (40000, StatusClass.INVALID),
        (40006, StatusClass.INVALID),
        (40501, StatusClass.INVALID),
        (40100, StatusClass.CONFIG),
        (40200, StatusClass.CONFIG),
        (40203, StatusClass.CONFIG),
        (40205, StatusClass.CONFIG),
        (40207, StatusClass.CONFIG),
        (40101, StatusClass.TRANSIENT),
        (40202, StatusClass.TRANSIENT),
        (40401, StatusClass.NOT_FOUND),
        (40403, StatusClass.NOT_FOUND),
        (50000, StatusClass.TRANSIENT),
        (50001, StatusClass.TRANSIENT),
        (50301, StatusClass.TRANSIENT),
        (50399, StatusClass.TRANSIENT),
        (59999, StatusClass.TRANSIENT),  # unknown 5xxxx
        (40999, StatusClass.INVALID),  # unknown 4xxxx request error
        (0, StatusClass.INVALID),  # nonsense is never retried automatically
    ],
)
def test_classify_status_follows_the_reference_table(code, expected):
    assert classify_status(code) is expected


# --- task_post ----------------------------------------------------------------------------------


def test_task_post_returns_created_outcome_with_cost_and_sends_a_json_array(client, upstream):
    upstream.post(POST_URL, json=envelope([upstream_task(TASK_ID, cost=0.0102, data=prompt())]))

    (outcome,) = client.task_post("chat_gpt", [prompt()])

    assert outcome == TaskOutcome(
        id=TASK_ID,
        status_code=20100,
        status_message="Task Created.",
        status_class=StatusClass.CREATED,
        cost=Decimal("0.0102"),
        data=prompt(),
        result=None,
        raw=upstream_task(TASK_ID, cost=0.0102, data=prompt()),
    )
    assert outcome.accepted
    request = upstream.calls[0].request
    assert json.loads(request.body) == [prompt()]
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "aisa-llm-dashboard/0.1"


def test_task_post_keeps_per_task_refusals_inside_http_200(client, upstream):
    refused = upstream_task("t-2", 40501, "Invalid Field: 'model_name'.", cost=0)
    upstream.post(POST_URL, json=envelope([upstream_task("t-1"), refused]))

    first, second = client.task_post("chat_gpt", [prompt(1), prompt(2)])

    assert first.status_class is StatusClass.CREATED
    assert second.status_class is StatusClass.INVALID
    assert second.status_message == "Invalid Field: 'model_name'."
    assert second.cost == Decimal("0")
    assert not second.accepted


def test_task_post_missing_cost_counts_as_zero(client, upstream):
    task = upstream_task()
    del task["cost"]
    upstream.post(POST_URL, json=envelope([task]))

    assert client.task_post("chat_gpt", [prompt()])[0].cost == Decimal("0")


def test_task_post_splits_250_tasks_into_100_100_50_and_keeps_order(client, upstream):
    upstream.add_callback(responses.POST, POST_URL, callback=echo_created)
    tasks = [prompt(n) for n in range(250)]

    outcomes = client.task_post("chat_gpt", tasks)

    assert TASK_POST_CHUNK == 100
    assert [len(json.loads(call.request.body)) for call in upstream.calls] == [100, 100, 50]
    assert [outcome.id for outcome in outcomes] == [f"id-tag-{n}" for n in range(250)]


def test_task_post_of_nothing_sends_nothing(client, upstream):
    assert client.task_post("chat_gpt", []) == []
    assert len(upstream.calls) == 0


def test_task_post_read_timeout_is_reply_lost_and_never_resent(client, upstream):
    upstream.post(POST_URL, body=requests.exceptions.ReadTimeout("Read timed out. (read timeout=60)"))

    with pytest.raises(UpstreamReplyLost) as caught:
        client.task_post("chat_gpt", [prompt()])

    assert len(upstream.calls) == 1
    assert caught.value.lost_range == (0, 1)
    assert caught.value.outcomes_before == []
    assert "no reply within 60 s" in str(caught.value)
    assert (
        "The task may have been accepted and charged, and was not sent again: check for it (by tag) before "
        "submitting it again." in str(caught.value)
    )


def test_a_lost_reply_for_several_tasks_speaks_of_them_in_the_plural(client, upstream):
    upstream.post(POST_URL, body=requests.exceptions.ReadTimeout("Read timed out. (read timeout=60)"))

    with pytest.raises(UpstreamReplyLost) as caught:
        client.task_post("chat_gpt", [prompt(n) for n in range(3)])

    assert (
        "The 3 tasks may have been accepted and charged, and were not sent again: check for them (by tag) "
        "before submitting them again." in str(caught.value)
    )


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ConnectionError(
            ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))
        ),
        requests.exceptions.ChunkedEncodingError(ProtocolError("Response ended prematurely")),
        requests.exceptions.ConnectionError("something we do not recognise"),
        requests.exceptions.SSLError("EOF occurred in violation of protocol"),
        RuntimeError("a bug somewhere under requests"),
    ],
    ids=["reset-after-send", "truncated-chunks", "unrecognised-connection-error", "tls-eof", "other"],
)
def test_task_post_failure_after_sending_is_reply_lost_after_one_call(client, upstream, failure):
    upstream.post(POST_URL, body=failure)

    with pytest.raises(UpstreamReplyLost):
        client.task_post("chat_gpt", [prompt()])

    assert len(upstream.calls) == 1


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (500, "Internal Server Error", "HTTP 500 with a body that is not JSON"),
        (502, "<html><body>Bad gateway</body></html>", "HTTP 502 with a body that is not JSON"),
        (
            503,
            json.dumps({"error": {"type": "upstream_error", "code": 503, "message": "Upstream unavailable"}}),
            "HTTP 503 upstream_error: Upstream unavailable",
        ),
        (500, json.dumps(envelope([], 50000, "Internal Error.")), "HTTP 500, status 50000: Internal Error."),
    ],
)
def test_task_post_http_5xx_is_reply_lost_after_one_call(client, upstream, status, body, expected):
    upstream.post(POST_URL, status=status, body=body)

    with pytest.raises(UpstreamReplyLost) as caught:
        client.task_post("chat_gpt", [prompt()])

    assert len(upstream.calls) == 1
    assert caught.value.http_status == status
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        '{"status_code": 20000, "tasks": [{"id": "t-1", "status_',  # truncated
        "",
        "[]",
        json.dumps({"status_code": 20000, "tasks": None}),
        json.dumps({"tasks": [upstream_task()]}),  # no top-level status_code
        json.dumps(envelope([upstream_task("a"), upstream_task("b")])),  # two answers for one task
        json.dumps(envelope([{"id": "t-1", "status_message": "no code"}])),
        json.dumps(envelope([upstream_task(cost="lots")])),
        json.dumps({"error": {"type": "api_error", "message": "odd"}}),  # an error body with HTTP 200
    ],
    ids=[
        "truncated",
        "empty",
        "list",
        "no-tasks",
        "no-status",
        "count-mismatch",
        "task-without-code",
        "bad-cost",
        "error-with-200",
    ],
)
def test_task_post_malformed_reply_is_reply_lost(client, upstream, body):
    upstream.post(POST_URL, status=200, body=body)

    with pytest.raises(UpstreamReplyLost) as caught:
        client.task_post("chat_gpt", [prompt()])

    assert len(upstream.calls) == 1
    assert caught.value.lost_range == (0, 1)


def test_a_bug_while_reading_a_post_reply_is_reply_lost_not_a_stray_exception(client, upstream, monkeypatch):
    upstream.post(POST_URL, json=envelope([upstream_task()]))
    monkeypatch.setattr(failures, "_parse_task", lambda raw: 1 / 0)

    with pytest.raises(UpstreamReplyLost) as caught:
        client.task_post("chat_gpt", [prompt()])

    assert "an unexpected error occurred while reading it (ZeroDivisionError)" in str(caught.value)
    assert caught.value.http_status == 200
    assert_no_secret(caught.value)


def test_task_post_connection_refused_is_unavailable_and_nothing_was_sent(client, upstream):
    upstream.post(POST_URL, body=connection_refused())  # what requests raises after urllib3's retries

    with pytest.raises(UpstreamUnavailable) as caught:
        client.task_post("chat_gpt", [prompt()])

    assert "the connection was refused" in str(caught.value)
    assert "Nothing was sent" in str(caught.value)
    assert caught.value.outcomes_before == []


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (
            requests.exceptions.ConnectTimeout("Connection to api.aisa.one timed out. (connect timeout=5)"),
            "the connection timed out after 5 s",
        ),
        (
            requests.exceptions.ConnectionError(
                MaxRetryError(
                    None, "/x", NameResolutionError("api.aisa.one", None, OSError("Name or service"))
                )
            ),
            "its host name could not be resolved",
        ),
        (requests.exceptions.InvalidURL("bad"), "the request URL is not valid"),
    ],
    ids=["connect-timeout", "dns", "invalid-url"],
)
def test_never_sent_failures_are_unavailable(client, upstream, failure, expected):
    upstream.post(POST_URL, body=failure)

    with pytest.raises(UpstreamUnavailable) as caught:
        client.task_post("chat_gpt", [prompt()])

    assert expected in str(caught.value)
    assert "Nothing was sent" in str(caught.value)


def test_second_chunk_lost_keeps_first_chunk_outcomes_and_never_sends_the_third(client, upstream):
    tasks = [prompt(n) for n in range(250)]
    calls = []

    def first_then_timeout(request):
        calls.append(request)
        if len(calls) == 1:
            return echo_created(request)
        raise requests.exceptions.ReadTimeout("Read timed out.")

    upstream.add_callback(responses.POST, POST_URL, callback=first_then_timeout)

    with pytest.raises(UpstreamReplyLost) as caught:
        client.task_post("chat_gpt", tasks)

    assert len(upstream.calls) == 2
    assert caught.value.lost_range == (100, 200)
    assert [outcome.id for outcome in caught.value.outcomes_before] == [f"id-tag-{n}" for n in range(100)]
    assert "Tasks 101–200 of 250 may have been accepted" in str(caught.value)
    assert "Tasks 201–250 were not sent" in str(caught.value)


def test_second_chunk_not_sent_keeps_first_chunk_outcomes(client, upstream):
    calls = []

    def first_then_refused(request):
        calls.append(request)
        if len(calls) == 1:
            return echo_created(request)
        raise connection_refused()

    upstream.add_callback(responses.POST, POST_URL, callback=first_then_refused)

    with pytest.raises(UpstreamUnavailable) as caught:
        client.task_post("chat_gpt", [prompt(n) for n in range(150)])

    assert len(caught.value.outcomes_before) == 100
    assert caught.value.outcomes_before[0].id == "id-tag-0"


def test_top_level_error_envelope_on_post_is_rejected_not_lost(client, upstream):
    body = envelope([], 40200, "Payment Required.")
    upstream.post(POST_URL, json=body)

    with pytest.raises(UpstreamRejected) as caught:
        client.task_post("chat_gpt", [prompt()])

    assert caught.value.status_code == 40200
    assert caught.value.status_class is StatusClass.CONFIG
    assert "Payment Required." in str(caught.value)
    assert len(upstream.calls) == 1


def test_top_level_error_never_hides_tasks_the_upstream_accepted(client, upstream):
    upstream.post(POST_URL, json=envelope([upstream_task("t-1", 20100)], 40000, "Odd."))

    (outcome,) = client.task_post("chat_gpt", [prompt()])

    assert outcome.status_class is StatusClass.CREATED
    assert outcome.id == "t-1"


def test_task_post_rejects_non_dict_tasks_before_sending(client, upstream):
    with pytest.raises(TypeError):
        client.task_post("chat_gpt", ["not a task"])
    assert len(upstream.calls) == 0


def test_task_post_sends_decimals_as_numbers(client, upstream):
    upstream.post(POST_URL, json=envelope([upstream_task()]))

    client.task_post("chat_gpt", [{**prompt(), "temperature": Decimal("0.3")}])

    assert json.loads(upstream.calls[0].request.body)[0]["temperature"] == 0.3


# --- rate limits --------------------------------------------------------------------------------


def test_429_is_retried_by_the_adapter_then_succeeds(client, upstream):
    upstream.post(
        POST_URL, status=429, headers={"Retry-After": "2"}, json={"error": {"type": "rate_limit_error"}}
    )
    upstream.post(POST_URL, json=envelope([upstream_task()]))

    (outcome,) = client.task_post("chat_gpt", [prompt()])

    assert outcome.status_class is StatusClass.CREATED
    assert len(upstream.calls) == 2


def test_429_with_retry_after_beyond_the_cap_raises_at_once(client, upstream):
    upstream.post(
        POST_URL,
        status=429,
        headers={"Retry-After": "3600"},
        json={"error": {"type": "rate_limit_error", "code": 429, "message": "Too many requests"}},
    )

    with pytest.raises(UpstreamRateLimited) as caught:
        client.task_post("chat_gpt", [prompt()])

    assert caught.value.retry_after == 3600.0
    assert caught.value.http_status == 429
    assert caught.value.error_type == "rate_limit_error"
    assert caught.value.status_class is StatusClass.TRANSIENT
    assert "Too many requests" in str(caught.value)
    assert "try again in 3600 s" in str(caught.value)
    assert len(upstream.calls) == 1


def test_429_that_persists_gives_up_after_two_retries(client, upstream):
    upstream.get(
        f"{AISA}/ai_optimization/claude/llm_responses/models", status=429, headers={"Retry-After": "1"}
    )

    with pytest.raises(UpstreamRateLimited) as caught:
        client.models("claude")

    assert isinstance(caught.value, UpstreamRejected)
    assert caught.value.retry_after == 1.0
    assert len(upstream.calls) == 3


def test_429_retry_after_as_http_date_beyond_the_cap_raises_at_once(client, upstream):
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 3600))
    upstream.post(POST_URL, status=429, headers={"Retry-After": later})

    with pytest.raises(UpstreamRateLimited) as caught:
        client.task_post("chat_gpt", [prompt()])

    assert 3500 <= caught.value.retry_after <= 3600
    assert len(upstream.calls) == 1


def test_a_later_429_beyond_the_cap_stops_the_retries(upstream):
    client = LLMResponsesClient(base_url=AISA, token=TOKEN, max_rate_limit_wait=5)
    upstream.post(POST_URL, status=429, headers={"Retry-After": "4"})
    upstream.post(POST_URL, status=429, headers={"Retry-After": "6"})
    upstream.post(POST_URL, json=envelope([upstream_task()]))

    with pytest.raises(UpstreamRateLimited) as caught:
        client.task_post("chat_gpt", [prompt()])

    assert caught.value.retry_after == 6.0
    assert len(upstream.calls) == 2


@pytest.mark.parametrize("status", [500, 502, 503, 413])
def test_a_retry_after_on_other_statuses_is_never_a_reason_to_resend_a_post(client, upstream, status):
    upstream.post(POST_URL, status=status, headers={"Retry-After": "1"}, body="busy")
    upstream.post(POST_URL, json=envelope([upstream_task()]))

    with pytest.raises((UpstreamReplyLost, UpstreamRejected)):
        client.task_post("chat_gpt", [prompt()])

    assert len(upstream.calls) == 1


# --- rejections ---------------------------------------------------------------------------------


def test_aisa_401_error_body_is_rejected_with_its_message_and_type(client, upstream):
    upstream.post(
        POST_URL,
        status=401,
        json={
            "error": {
                "type": "authentication_error",
                "code": "invalid_api_key",
                "message": "Invalid API key",
                "request_id": "req_123",
            }
        },
    )

    with pytest.raises(UpstreamRejected) as caught:
        client.task_post("chat_gpt", [prompt()])

    error = caught.value
    assert str(error).startswith("AIsa rejected the request (HTTP 401 authentication_error): Invalid API key")
    assert "req_123" in str(error)
    assert error.error_type == "authentication_error"
    assert error.request_id == "req_123"
    assert error.http_status == 401
    assert error.status_class is StatusClass.CONFIG
    assert len(upstream.calls) == 1


def test_dataforseo_401_envelope_is_rejected_with_its_status(dfs_client, upstream):
    upstream.post(
        f"{DFS}/ai_optimization/chat_gpt/llm_responses/task_post",
        status=401,
        json=envelope([], 40100, "You are not authorized to access this resource."),
    )

    with pytest.raises(UpstreamRejected) as caught:
        dfs_client.task_post("chat_gpt", [prompt()])

    assert caught.value.status_code == 40100
    assert caught.value.http_status == 401
    assert caught.value.status_class is StatusClass.CONFIG
    assert "DataForSEO rejected the request" in str(caught.value)
    assert "You are not authorized to access this resource." in str(caught.value)


@pytest.mark.parametrize(
    ("status", "body", "expected", "status_class"),
    [
        (
            404,
            "<html>Not Found</html>",
            "returned HTTP 404 with a body that is not JSON. Check the base URL.",
            "config",
        ),
        (
            422,
            json.dumps({"detail": "user_prompt is required"}),
            "(HTTP 422): user_prompt is required",
            "invalid",
        ),
        (400, json.dumps({"error": "bad request"}), "(HTTP 400): bad request", "invalid"),
        (403, json.dumps({"unexpected": True}), "HTTP 403 with an unexpected JSON body", "config"),
        (402, "", "HTTP 402 with an empty body", "config"),
        (301, "", "redirect", "invalid"),
    ],
)
def test_other_error_bodies_give_a_clear_message(client, upstream, status, body, expected, status_class):
    upstream.post(POST_URL, status=status, body=body)

    with pytest.raises(UpstreamRejected) as caught:
        client.task_post("chat_gpt", [prompt()])

    assert expected in str(caught.value)
    assert caught.value.status_class == status_class
    assert len(upstream.calls) == 1


# --- GETs ---------------------------------------------------------------------------------------


def test_task_get_pending(client, upstream):
    upstream.get(TASK_GET_URL, json=envelope([upstream_task(TASK_ID, 40602, "Task In Queue.", cost=0)]))

    outcome = client.task_get("chat_gpt", TASK_ID)

    assert outcome.status_class is StatusClass.PENDING
    assert outcome.status_message == "Task In Queue."
    assert outcome.result is None


def test_task_get_done_with_result(client, upstream):
    result = [{"model_name": "gpt-4.1-mini-2025-04-14", "money_spent": 0.0286, "items": []}]
    upstream.get(TASK_GET_URL, json=envelope([upstream_task(TASK_ID, 20000, "Ok.", cost=0, result=result)]))

    outcome = client.task_get("chat_gpt", TASK_ID)

    assert outcome.status_class is StatusClass.DONE
    assert outcome.result == result
    assert outcome.raw["result"] == result


def test_task_get_not_found_is_an_outcome(client, upstream):
    upstream.get(TASK_GET_URL, json=envelope([upstream_task(TASK_ID, 40401, "Task Not Found.", cost=0)]))

    assert client.task_get("chat_gpt", TASK_ID).status_class is StatusClass.NOT_FOUND


def test_task_get_top_level_not_found_without_task_is_an_outcome(client, upstream):
    upstream.get(TASK_GET_URL, json=envelope([], 40401, "Task Not Found."))

    outcome = client.task_get("chat_gpt", TASK_ID)

    assert outcome.status_class is StatusClass.NOT_FOUND
    assert outcome.id == TASK_ID


def test_task_get_about_another_task_is_malformed(client, upstream):
    upstream.get(TASK_GET_URL, json=envelope([upstream_task("someone-else", 20000, "Ok.", result=[])]))

    with pytest.raises(UpstreamMalformed):
        client.task_get("chat_gpt", TASK_ID)


@pytest.mark.parametrize("task_id", ["../models", "a/b", "x?y=1", "", "%2e%2e", "a b", "é"])
def test_task_get_refuses_ids_that_could_alter_the_path(client, upstream, task_id):
    with pytest.raises(ValueError):
        client.task_get("chat_gpt", task_id)
    assert len(upstream.calls) == 0


@pytest.mark.parametrize("provider", ["../v3", "chat_gpt/x", "Claude", "", "chat gpt", "claude?x=1"])
def test_provider_must_be_a_simple_slug(client, upstream, provider):
    with pytest.raises(ValueError):
        client.models(provider)
    assert len(upstream.calls) == 0


def test_models_are_parsed(client, upstream):
    result = [
        {
            "model_name": "gpt-4.1-mini",
            "reasoning": False,
            "web_search_supported": True,
            "task_post_supported": True,
        },
        {"model_name": "o3", "reasoning": True, "web_search_supported": False, "task_post_supported": False},
        {"unexpected": "entry"},
    ]
    upstream.get(
        f"{AISA}/ai_optimization/chat_gpt/llm_responses/models",
        json=envelope([upstream_task("m", 20000, "Ok.", cost=0, result=result)]),
    )

    assert client.models("chat_gpt") == [
        ModelInfo("gpt-4.1-mini", reasoning=False, web_search_supported=True, task_post_supported=True),
        ModelInfo("o3", reasoning=True, web_search_supported=False, task_post_supported=False),
    ]


def test_model_flags_written_as_text_are_read_as_what_they_say(client, upstream):
    result = [
        {
            "model_name": "o1-pro",
            "reasoning": "true",
            "web_search_supported": "false",
            "task_post_supported": "false",
        },
        {
            "model_name": "gpt-4.1",
            "reasoning": "False",
            "web_search_supported": "True",
            "task_post_supported": 1,
        },
        {"model_name": "odd", "reasoning": "maybe", "web_search_supported": {}, "task_post_supported": None},
    ]
    upstream.get(
        f"{AISA}/ai_optimization/chat_gpt/llm_responses/models",
        json=envelope([upstream_task("m", 20000, "Ok.", cost=0, result=result)]),
    )

    assert client.models("chat_gpt") == [
        ModelInfo("o1-pro", reasoning=True, web_search_supported=False, task_post_supported=False),
        ModelInfo("gpt-4.1", reasoning=False, web_search_supported=True, task_post_supported=True),
        # unreadable: the documented defaults
        ModelInfo("odd", reasoning=False, web_search_supported=False, task_post_supported=True),
    ]


def test_tasks_ready_lists_result_entries(client, upstream):
    ready = [{"id": TASK_ID, "se": "chat_gpt", "tag": "a", "endpoint": "/v3/..."}]
    upstream.get(
        f"{AISA}/ai_optimization/claude/llm_responses/tasks_ready",
        json=envelope([upstream_task("r", 20000, "Ok.", cost=0, result=ready)]),
    )

    assert client.tasks_ready("claude") == ready


def test_get_read_timeout_is_unavailable_without_repeating(client, upstream):
    upstream.get(TASK_GET_URL, body=requests.exceptions.ReadTimeout("Read timed out."))

    with pytest.raises(UpstreamUnavailable):
        client.task_get("chat_gpt", TASK_ID)

    assert len(upstream.calls) == 1


def test_get_5xx_is_unavailable(client, upstream):
    upstream.get(TASK_GET_URL, status=503, body="Service Unavailable")

    with pytest.raises(UpstreamUnavailable) as caught:
        client.task_get("chat_gpt", TASK_ID)

    assert caught.value.http_status == 503
    assert len(upstream.calls) == 1


@pytest.mark.parametrize("body", ["<html></html>", "[]", json.dumps({"tasks": []})])
def test_get_malformed_reply(client, upstream, body):
    upstream.get(TASK_GET_URL, body=body)

    with pytest.raises(UpstreamMalformed):
        client.task_get("chat_gpt", TASK_ID)


def test_get_with_aisa_error_body_is_rejected(client, upstream):
    upstream.get(
        f"{AISA}/ai_optimization/chat_gpt/llm_responses/models",
        status=403,
        json={"error": {"type": "authentication_error", "message": "Key disabled"}},
    )

    with pytest.raises(UpstreamRejected) as caught:
        client.models("chat_gpt")

    assert caught.value.error_type == "authentication_error"


def test_user_data_returns_the_account(dfs_client, upstream):
    account = {"login": LOGIN, "money": {"balance": 12.5}}
    upstream.get(
        f"{DFS}/appendix/user_data",
        json=envelope([upstream_task("u", 20000, "Ok.", cost=0, result=[account])]),
    )

    assert dfs_client.user_data()["money"]["balance"] == 12.5


def test_user_data_through_aisa_is_refused_without_a_call(client, upstream):
    with pytest.raises(UpstreamRejected):
        client.user_data()
    assert len(upstream.calls) == 0


# --- live ---------------------------------------------------------------------------------------


def test_live_sends_exactly_one_task_and_waits_long_enough(client, upstream):
    result = [{"model_name": "gpt-4.1-mini-2025-04-14", "items": []}]
    upstream.post(LIVE_URL, json=envelope([upstream_task("l-1", 20000, "Ok.", cost=0.0292, result=result)]))

    outcome = client.live("chat_gpt", prompt())

    assert outcome.status_class is StatusClass.DONE
    assert outcome.cost == Decimal("0.0292")
    assert json.loads(upstream.calls[0].request.body) == [prompt()]
    assert upstream.calls[0].request.req_kwargs["timeout"] == (5.0, clients.LIVE_READ_TIMEOUT)


def test_live_read_timeout_is_reply_lost(client, upstream):
    upstream.post(LIVE_URL, body=requests.exceptions.ReadTimeout("Read timed out."))

    with pytest.raises(UpstreamReplyLost) as caught:
        client.live("chat_gpt", prompt())

    assert caught.value.lost_range == (0, 1)
    assert len(upstream.calls) == 1


# --- auth, timeouts, logging, secrets -----------------------------------------------------------


def test_aisa_uses_bearer_and_dataforseo_uses_basic(client, dfs_client, upstream):
    upstream.get(
        f"{AISA}/ai_optimization/chat_gpt/llm_responses/models", json=envelope([upstream_task(result=[])])
    )
    upstream.get(
        f"{DFS}/ai_optimization/chat_gpt/llm_responses/models", json=envelope([upstream_task(result=[])])
    )

    client.models("chat_gpt")
    dfs_client.models("chat_gpt")

    assert upstream.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert upstream.calls[1].request.headers["Authorization"] == f"Basic {SECRETS[2]}"


def test_every_call_has_connect_and_read_timeouts(client, upstream):
    upstream.get(
        f"{AISA}/ai_optimization/chat_gpt/llm_responses/models", json=envelope([upstream_task(result=[])])
    )
    upstream.get(
        f"{AISA}/ai_optimization/chat_gpt/llm_responses/tasks_ready",
        json=envelope([upstream_task(result=[])]),
    )
    upstream.get(TASK_GET_URL, json=envelope([upstream_task(TASK_ID, 40602)]))
    upstream.post(POST_URL, json=envelope([upstream_task()]))

    client.models("chat_gpt")
    client.tasks_ready("chat_gpt")
    client.task_get("chat_gpt", TASK_ID)
    client.task_post("chat_gpt", [prompt()])

    assert len(upstream.calls) == 4
    for call in upstream.calls:
        assert call.request.req_kwargs["timeout"] == (5.0, 60.0)


def test_one_log_line_per_call_without_headers(client, upstream, caplog):
    upstream.post(POST_URL, json=envelope([upstream_task()]))

    with caplog.at_level(logging.INFO, logger="tasks.upstream"):
        client.task_post("chat_gpt", [prompt()])

    (record,) = caplog.records
    assert record.name == "tasks.upstream.clients"
    message = record.getMessage()
    assert message.startswith("upstream POST task_post provider=chat_gpt http_status=200 elapsed_ms=")
    assert message.endswith(" attempts=1 outcome=ok")
    assert "Authorization" not in caplog.text
    assert TOKEN not in caplog.text


def leaky_request():
    return requests.Request("POST", POST_URL, headers={"Authorization": f"Bearer {TOKEN}"}).prepare()


@pytest.mark.parametrize(
    ("register", "expected"),
    [
        (
            lambda m: m.post(POST_URL, body=requests.exceptions.ReadTimeout(TOKEN, request=leaky_request())),
            UpstreamReplyLost,
        ),
        (
            lambda m: m.post(
                POST_URL, body=requests.exceptions.ConnectionError(TOKEN, request=leaky_request())
            ),
            UpstreamReplyLost,
        ),
        (lambda m: m.post(POST_URL, body=connection_refused()), UpstreamUnavailable),
        (
            lambda m: m.post(POST_URL, status=500, body=f"echo: Authorization: Bearer {TOKEN}"),
            UpstreamReplyLost,
        ),
        (
            lambda m: m.post(
                POST_URL,
                status=401,
                json={"error": {"type": "authentication_error", "message": f"Invalid API key {TOKEN}"}},
            ),
            UpstreamRejected,
        ),
        (
            lambda m: m.post(POST_URL, json=envelope([], 40100, f"Not authorized: {TOKEN}")),
            UpstreamRejected,
        ),
        (
            lambda m: m.post(
                POST_URL, status=429, headers={"Retry-After": "999"}, json={"error": {"message": TOKEN}}
            ),
            UpstreamRateLimited,
        ),
        (lambda m: m.post(POST_URL, body=f'{{"status_code": 20000, "tasks": "{TOKEN}'), UpstreamReplyLost),
    ],
    ids=[
        "read-timeout",
        "connection-error",
        "refused",
        "500-echo",
        "401-echo",
        "envelope-echo",
        "429",
        "broken",
    ],
)
def test_no_secret_in_any_exception_or_log(client, upstream, caplog, register, expected):
    register(upstream)

    with caplog.at_level(logging.DEBUG), pytest.raises(expected) as caught:
        client.task_post("chat_gpt", [prompt()])

    assert_no_secret(caught.value, caplog)
    assert caught.value.body_excerpt is None or TOKEN not in caught.value.body_excerpt
    assert TOKEN not in repr(client)


def test_no_password_in_dataforseo_exceptions(dfs_client, upstream, caplog):
    upstream.post(
        f"{DFS}/ai_optimization/chat_gpt/llm_responses/task_post",
        status=401,
        json=envelope([], 40100, f"bad {PASSWORD} / {SECRETS[2]}"),
    )

    with caplog.at_level(logging.DEBUG), pytest.raises(UpstreamRejected) as caught:
        dfs_client.task_post("chat_gpt", [prompt()])

    assert_no_secret(caught.value, caplog)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_url": f"https://user:{TOKEN}@api.aisa.one/apis/v1/dataforseo", "token": TOKEN},
        {"base_url": "ftp://api.aisa.one", "token": TOKEN},
        {"base_url": AISA},
        {"base_url": AISA, "token": f"{TOKEN}\r\nX-Injected: 1"},
        {"base_url": AISA, "token": TOKEN, "login": LOGIN, "password": PASSWORD},
    ],
)
def test_bad_configuration_is_refused_without_echoing_secrets(kwargs):
    with pytest.raises(ValueError) as caught:
        LLMResponsesClient(**kwargs)
    assert TOKEN not in str(caught.value)


def test_for_credential_builds_bearer_and_basic_clients(settings):
    from tasks.models import Credential

    settings.UPSTREAM_CONNECT_TIMEOUT = 3.0
    settings.UPSTREAM_READ_TIMEOUT = 45.0
    aisa = Credential(name="AIsa", kind=Credential.Kind.AISA)
    aisa.set_secret(TOKEN)
    direct = Credential(
        name="Direct",
        kind=Credential.Kind.DATAFORSEO,
        login=LOGIN,
        base_url="http://127.0.0.1:8000/sandbox/v3/",
    )
    direct.set_secret(PASSWORD)

    aisa_client = LLMResponsesClient.for_credential(aisa)
    direct_client = LLMResponsesClient.for_credential(direct)

    assert aisa_client.base_url == AISA
    assert (aisa_client.connect_timeout, aisa_client.read_timeout) == (3.0, 45.0)
    assert not aisa_client.uses_basic_auth
    assert direct_client.base_url == "http://127.0.0.1:8000/sandbox/v3"
    assert direct_client.uses_basic_auth
    assert direct_client.service_name == "DataForSEO"
    assert PASSWORD not in repr(direct_client)


def test_exceptions_are_one_family():
    for cls in (
        UpstreamUnavailable,
        UpstreamReplyLost,
        UpstreamRejected,
        UpstreamRateLimited,
        UpstreamMalformed,
    ):
        assert issubclass(cls, UpstreamError)
    assert issubclass(UpstreamRateLimited, UpstreamRejected)


# --- the real transport (no `responses`) --------------------------------------------------------


def test_the_adapter_retries_only_what_never_arrived_and_429():
    client = LLMResponsesClient(base_url=AISA, token=TOKEN, max_rate_limit_wait=12)

    for url in ("https://api.aisa.one", "http://127.0.0.1"):
        retry = client._session.get_adapter(url).max_retries
        assert retry.read is False  # read=0 would make a lost POST reply look like "never sent"
        assert retry.connect >= 1
        assert 429 in retry.status_forcelist and retry.status >= 1
        assert retry.other == 0 and retry.redirect == 0
        assert retry.allowed_methods is None  # a 429 to a POST is retried too
        assert retry.retry_after_max == 12
        assert retry.raise_on_status is False
        assert retry.is_retry("POST", 429)
        assert not retry.is_retry("POST", 503, has_retry_after=True)
        assert not retry.is_retry("POST", 500)


class Upstream(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 (port 0, own thread) that answers its n-th request with `script[n]`
    (the last step repeats) and records every request it read."""

    daemon_threads = True

    def __init__(self, script):
        super().__init__(("127.0.0.1", 0), ScriptedHandler)
        self.script = script
        self.received = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.server_port}/apis/v1/dataforseo"

    def close(self):
        self.stopping.set()
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5)


class ScriptedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real upstream

    def do_GET(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append((self.command, self.path, body))
        self.server.script[min(len(self.server.received), len(self.server.script)) - 1](self)

    do_POST = do_GET

    def log_message(self, *args):
        pass


def answer(status, payload=None, headers=None):
    def step(handler):
        body = json.dumps(payload).encode() if payload is not None else b""
        handler.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return step


def close_without_reply(handler):
    handler.close_connection = True


def reset_connection(handler):
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True


def stay_silent(handler):
    handler.server.stopping.wait(5)  # far beyond the client's read timeout; ends when the test does
    handler.close_connection = True


def cut_off_reply(handler):
    handler.wfile.write(
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"sta'
    )
    handler.close_connection = True


CREATED = answer(200, envelope([upstream_task()]))


@pytest.fixture
def serve():
    servers = []

    def start(*script):
        servers.append(Upstream(list(script)))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def real_client(server, **kwargs):
    kwargs.setdefault("read_timeout", 5)
    return LLMResponsesClient(base_url=server.base_url, token=TOKEN, connect_timeout=2, **kwargs)


def test_real_post_succeeds_and_is_sent_once(serve):
    server = serve(CREATED)

    (outcome,) = real_client(server).task_post("chat_gpt", [prompt()])

    assert outcome.status_class is StatusClass.CREATED
    assert len(server.received) == 1
    method, path, body = server.received[0]
    assert (method, path) == ("POST", "/apis/v1/dataforseo/ai_optimization/chat_gpt/llm_responses/task_post")
    assert json.loads(body) == [prompt()]


def test_real_get_without_a_reply_is_unavailable_and_not_repeated(serve):
    server = serve(stay_silent, answer(200, envelope([upstream_task(TASK_ID, 40602)])))

    with pytest.raises(UpstreamUnavailable) as caught:
        real_client(server, read_timeout=0.5).task_get("chat_gpt", TASK_ID)

    assert "no reply within 0.5 s" in str(caught.value)
    assert len(server.received) == 1


def test_real_429_waits_for_retry_after_then_succeeds(serve, caplog):
    limited = answer(429, {"error": {"type": "rate_limit_error"}}, {"Retry-After": "1"})
    server = serve(limited, CREATED)
    started = time.monotonic()

    with caplog.at_level(logging.INFO, logger="tasks.upstream"):
        (outcome,) = real_client(server).task_post("chat_gpt", [prompt()])

    assert outcome.status_class is StatusClass.CREATED
    assert len(server.received) == 2
    assert server.received[0][2] == server.received[1][2]  # the same POST, sent again after the 429
    assert time.monotonic() - started >= 0.9
    assert "attempts=2 outcome=ok" in caplog.text


def test_real_429_with_retry_after_beyond_the_cap_raises_without_sleeping(serve):
    server = serve(answer(429, {"error": {"type": "rate_limit_error"}}, {"Retry-After": "3600"}), CREATED)
    started = time.monotonic()

    with pytest.raises(UpstreamRateLimited) as caught:
        real_client(server).task_post("chat_gpt", [prompt()])

    assert time.monotonic() - started < 2
    assert caught.value.retry_after == 3600
    assert len(server.received) == 1


def test_real_refused_port_is_retried_with_backoff_then_unavailable(monkeypatch, caplog):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    attempts, sleeps = [], []
    connect = urllib3.util.connection.create_connection

    def counted_connect(*args, **kwargs):
        attempts.append(args[0])
        return connect(*args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", counted_connect)
    monkeypatch.setattr("urllib3.util.retry.time.sleep", sleeps.append)
    client = LLMResponsesClient(base_url=f"http://127.0.0.1:{port}", token=TOKEN)

    with caplog.at_level(logging.DEBUG), pytest.raises(UpstreamUnavailable) as caught:
        client.task_post("chat_gpt", [prompt()])

    assert len(attempts) == 1 + session.CONNECT_RETRIES
    assert sleeps == [1.0, 2.0]  # urllib3's backoff: none before the first retry, then 2 × 0.5 s, 4 × 0.5 s
    assert "the connection was refused" in str(caught.value)
    assert "Nothing was sent" in str(caught.value)
    assert_no_secret(caught.value, caplog)


# --- postbacks ----------------------------------------------------------------------------------


def test_parse_task_outcome_reads_a_postback_task():
    result = [{"model_name": "claude-sonnet-4", "items": []}]

    outcome = parse_task_outcome(upstream_task(TASK_ID, 20000, "Ok.", cost=0.0031, result=result))

    assert outcome.id == TASK_ID
    assert outcome.status_class is StatusClass.DONE
    assert outcome.cost == Decimal("0.0031")
    assert outcome.result == result


@pytest.mark.parametrize(
    "raw", [None, [], {"id": "x"}, {"status_code": "n/a"}, upstream_task(cost=float("nan"))]
)
def test_parse_task_outcome_refuses_what_is_not_a_task(raw):
    with pytest.raises(UpstreamMalformed):
        parse_task_outcome(raw)


@pytest.mark.parametrize(
    "raw",
    [
        upstream_task(status_code=10**30),
        upstream_task(status_code="²"),
        upstream_task(status_code="9" * 5000),
        upstream_task(cost=10**30),
        upstream_task(cost=-1),
        upstream_task(cost="abc"),
        upstream_task(cost=[1]),
        {**upstream_task(), "id": {"nested": "id"}},
    ],
    ids=[
        "huge-code",
        "superscript-digit",
        "5000-digit-code",
        "huge-cost",
        "negative-cost",
        "text-cost",
        "list-cost",
        "object-id",
    ],
)
def test_a_task_object_whose_numbers_cannot_be_stored_is_refused_not_raised(raw):
    with pytest.raises(UpstreamMalformed):
        parse_task_outcome(raw)


# --- secrets in upstream messages ---------------------------------------------------------------

LONG_TOKEN = "sk-live-4f9c2a7e1b8d6f3a0c5e9b2d7a1f4c8e6b3d"  # 45 characters, like a real key


def visible_runs(secret: str, text: str, size: int = 8) -> list[str]:
    """Every run of `size` consecutive characters of `secret` that appears in `text`."""
    return [secret[i : i + size] for i in range(len(secret) - size + 1) if secret[i : i + size] in text]


def rejected_with(upstream, message: str, url: str = POST_URL):
    upstream.post(url, status=401, json={"error": {"type": "authentication_error", "message": message}})


@pytest.mark.parametrize("start", [250, 259, 280, 292, 299])
def test_a_key_straddling_the_message_cut_never_survives_in_part(upstream, start):
    client = LLMResponsesClient(base_url=AISA, token=LONG_TOKEN)
    rejected_with(upstream, "x" * start + LONG_TOKEN + " is not a valid key.")

    with pytest.raises(UpstreamRejected) as caught:
        client.task_post("chat_gpt", [prompt()])

    for text in (str(caught.value), caught.value.body_excerpt or ""):
        assert visible_runs(LONG_TOKEN, text) == []


def test_a_41_character_fragment_of_the_key_is_redacted(upstream):
    client = LLMResponsesClient(base_url=AISA, token=LONG_TOKEN)
    rejected_with(upstream, f"Invalid API key {LONG_TOKEN[:41]}… (truncated by the gateway)")

    with pytest.raises(UpstreamRejected) as caught:
        client.task_post("chat_gpt", [prompt()])

    assert visible_runs(LONG_TOKEN, str(caught.value)) == []
    assert "Invalid API key [redacted]" in str(caught.value)


def test_a_key_echoed_url_encoded_or_base64_encoded_is_redacted(upstream):
    token = "sk/4f9c+2a7e=1b8d&6f3a?0c5e"
    client = LLMResponsesClient(base_url=AISA, token=token)
    encoded = [quote(token, safe=""), quote_plus(token), base64.b64encode(token.encode()).decode()]
    rejected_with(upstream, " / ".join(f"got {form}" for form in encoded))

    with pytest.raises(UpstreamRejected) as caught:
        client.task_post("chat_gpt", [prompt()])

    for form in [token, *encoded]:
        assert visible_runs(form, str(caught.value)) == []
        assert visible_runs(form, caught.value.body_excerpt) == []


def test_a_dataforseo_password_in_any_form_is_redacted(dfs_client, upstream):
    basic = SECRETS[2]
    upstream.post(
        f"{DFS}/ai_optimization/chat_gpt/llm_responses/task_post",
        status=401,
        json=envelope([], 40100, f"bad {quote(PASSWORD)} in Basic {basic[:20]}"),
    )

    with pytest.raises(UpstreamRejected) as caught:
        dfs_client.task_post("chat_gpt", [prompt()])

    assert visible_runs(PASSWORD, str(caught.value)) == []
    assert visible_runs(basic, str(caught.value)) == []


@pytest.mark.parametrize("token", ["nope", "nope1234", "acte"])  # "acte" is in "[redacted]" itself
def test_a_short_key_is_redacted_whole_wherever_it_appears(upstream, token):
    client = LLMResponsesClient(base_url=AISA, token=token)
    rejected_with(upstream, f"Invalid API key {token}.")

    with pytest.raises(UpstreamRejected) as caught:
        client.task_post("chat_gpt", [prompt()])

    assert token not in str(caught.value).replace("[redacted]", "")
    assert token not in caught.value.body_excerpt.replace("[redacted]", "")
    assert "Invalid API key [redacted]. Check the credential." in str(caught.value)


def test_a_refused_task_whose_status_message_echoes_the_key_is_redacted(upstream):
    client = LLMResponsesClient(base_url=AISA, token=LONG_TOKEN)
    upstream.post(POST_URL, json=envelope([upstream_task(status_code=40100, message=f"key {LONG_TOKEN}")]))

    (outcome,) = client.task_post("chat_gpt", [prompt()])

    assert outcome.status_message == "key [redacted]"


def test_a_message_repeated_across_a_chunks_tasks_is_redacted_in_every_one(upstream):
    client = LLMResponsesClient(base_url=AISA, token=LONG_TOKEN)
    echoed = f"key {LONG_TOKEN}\x00"
    tasks = [
        upstream_task(status_code=40100, message=echoed),
        upstream_task(status_code=40100, message="Task Created."),
        upstream_task(status_code=40100, message=echoed),
    ]
    upstream.post(POST_URL, json=envelope(tasks))

    outcomes = client.task_post("chat_gpt", [prompt(), prompt(), prompt()])

    assert [outcome.status_message for outcome in outcomes] == [
        "key [redacted]\ufffd",
        "Task Created.",
        "key [redacted]\ufffd",
    ]


def test_redaction_keeps_ordinary_text_and_marks_each_run_once():
    from tasks.upstream.outcomes import SecretRedactor

    redactor = SecretRedactor([LONG_TOKEN])

    assert redactor.redact("Task Created.") == "Task Created."
    assert redactor.redact(f"a {LONG_TOKEN}{LONG_TOKEN} b") == "a [redacted] b"
    assert redactor.redact(f"{'y' * 400}{LONG_TOKEN}", limit=300) == "y" * 299 + "…"
    assert redactor.redact(f"{'y' * 290}{LONG_TOKEN}", limit=300) == "y" * 290 + "[redacted]"


@pytest.mark.parametrize("task_id", [None, "", "not an id: spaces", "x" * 200])
def test_an_accepted_task_without_a_usable_id_is_a_lost_reply_not_a_refusal(client, upstream, task_id):
    upstream.post(POST_URL, json=envelope([upstream_task(task_id)]))

    with pytest.raises(UpstreamReplyLost) as caught:
        client.task_post("chat_gpt", [prompt()])

    assert caught.value.lost_range == (0, 1)


def test_a_status_message_loses_what_no_database_stores(client, upstream):
    upstream.post(
        POST_URL, json=envelope([upstream_task(status_code=40501, message="bad\u0000field \ud800")])
    )

    (outcome,) = client.task_post("chat_gpt", [prompt()])

    assert outcome.status_message == "bad\ufffdfield ?"
