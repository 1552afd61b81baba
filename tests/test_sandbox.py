"""The stand-in upstream's own behaviour: it must match the documented API (api-reference §2, §3, §5),
or tests where the product and the stand-in agree prove nothing."""

import base64
import gzip
import json
import re
import threading
import time
import urllib.error
import urllib.request
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from django.test import Client
from django.utils import timezone

from sandbox import delivery, faults, stats
from sandbox.models import SandboxRequest, SandboxTask

pytestmark = pytest.mark.django_db

AISA = "/sandbox/apis/v1/dataforseo/ai_optimization"
DATAFORSEO = "/sandbox/v3/ai_optimization"
BEARER = {"HTTP_AUTHORIZATION": "Bearer sandbox-key"}
BASIC = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"sandbox@example.com:sandbox-password").decode()}
TASK_ID = re.compile(r"^\d{8}-\d{4}-\d{4}-\d{4}-[0-9a-f]{12}$")
DEFAULT_MODELS = {"chat_gpt": "gpt-4.1-mini", "claude": "claude-3-5-haiku"}
DROP = object()  # marks a field to leave out of a task


def make_task(provider: str = "chat_gpt", **fields) -> dict:
    """A valid task for `provider`, changed by `fields` (DROP removes one)."""
    task = {"user_prompt": "How relevant is the amusement park business in France?"}
    task["model_name"] = DEFAULT_MODELS[provider]
    task |= fields
    return {k: v for k, v in task.items() if v is not DROP}


def post(client, provider: str, function: str, body, *, route: str = AISA, auth: dict = BEARER):
    raw = body if isinstance(body, bytes) else json.dumps(body)
    return client.post(
        f"{route}/{provider}/llm_responses/{function}", raw, content_type="application/json", **auth
    )


def get(client, provider: str, function: str, *, route: str = AISA, auth: dict = BEARER):
    return client.get(f"{route}/{provider}/llm_responses/{function}", **auth)


def only_task(response) -> dict:
    assert response.status_code == 200, response.content
    tasks = response.json()["tasks"]
    assert len(tasks) == 1
    return tasks[0]


@pytest.fixture
def ready_at_once(settings):
    settings.SANDBOX_TASK_DELAY = 0


def finished(client, provider: str = "chat_gpt", **fields) -> dict:
    """Post one task, then collect it with task_get; the finished task object (tasks_ready needs no delay)."""
    accepted = only_task(post(client, provider, "task_post", [make_task(provider, **fields)]))
    assert accepted["status_code"] == 20100, accepted["status_message"]
    collected = only_task(get(client, provider, f"task_get/{accepted['id']}"))
    assert collected["status_code"] == 20000
    return collected


def answer_of(task: dict) -> dict:
    """The message section of a finished task."""
    message = next(item for item in task["result"][0]["items"] if item["type"] == "message")
    return message["sections"][0]


# --- §2 field rules -----------------------------------------------------------------------------------------

REJECTED = [
    pytest.param("chat_gpt", {"user_prompt": DROP}, "user_prompt", id="chat_gpt-user_prompt-required"),
    pytest.param("claude", {"user_prompt": ""}, "user_prompt", id="claude-user_prompt-not-empty"),
    pytest.param("chat_gpt", {"user_prompt": "x" * 501}, "user_prompt", id="chat_gpt-user_prompt-max-500"),
    pytest.param("claude", {"user_prompt": "x" * 501}, "user_prompt", id="claude-user_prompt-max-500"),
    pytest.param("chat_gpt", {"user_prompt": 42}, "user_prompt", id="user_prompt-must-be-string"),
    pytest.param("chat_gpt", {"model_name": DROP}, "model_name", id="chat_gpt-model_name-required"),
    pytest.param("chat_gpt", {"model_name": "gpt-9"}, "model_name", id="chat_gpt-model-not-in-catalog"),
    pytest.param("claude", {"model_name": "gpt-4.1"}, "model_name", id="claude-model-of-other-provider"),
    pytest.param("chat_gpt", {"model_name": "o1-pro"}, "model_name", id="chat_gpt-o1-pro-not-for-task_post"),
    pytest.param(
        "claude", {"model_name": "claude-opus-4-1"}, "model_name", id="claude-opus-4-1-not-for-task_post"
    ),
    pytest.param("chat_gpt", {"max_output_tokens": 4097}, "max_output_tokens", id="chat_gpt-max-tokens-4096"),
    pytest.param("claude", {"max_output_tokens": 4097}, "max_output_tokens", id="claude-max-tokens-4096"),
    pytest.param("chat_gpt", {"max_output_tokens": 15}, "max_output_tokens", id="chat_gpt-min-tokens-16"),
    pytest.param(
        "chat_gpt",
        {"model_name": "o3-mini", "max_output_tokens": 1023},
        "max_output_tokens",
        id="chat_gpt-reasoning-min-tokens-1024",
    ),
    pytest.param("claude", {"max_output_tokens": 0}, "max_output_tokens", id="claude-min-tokens-1"),
    pytest.param(
        "claude",
        {"model_name": "claude-sonnet-4-5", "use_reasoning": True, "max_output_tokens": 1024},
        "max_output_tokens",
        id="claude-use_reasoning-min-tokens-1025",
    ),
    pytest.param("chat_gpt", {"max_output_tokens": "2048"}, "max_output_tokens", id="max-tokens-string"),
    pytest.param("claude", {"max_output_tokens": 2048.5}, "max_output_tokens", id="max-tokens-float"),
    pytest.param("chat_gpt", {"max_output_tokens": True}, "max_output_tokens", id="max-tokens-bool"),
    pytest.param("chat_gpt", {"temperature": 2.01}, "temperature", id="chat_gpt-temperature-max-2"),
    pytest.param("chat_gpt", {"temperature": -0.1}, "temperature", id="chat_gpt-temperature-min-0"),
    pytest.param("claude", {"temperature": 1.1}, "temperature", id="claude-temperature-max-1"),
    pytest.param("claude", {"temperature": "0.5"}, "temperature", id="temperature-string"),
    pytest.param("chat_gpt", {"top_p": 1.5}, "top_p", id="chat_gpt-top_p-max-1"),
    pytest.param("claude", {"top_p": -0.5}, "top_p", id="claude-top_p-min-0"),
    pytest.param(
        "chat_gpt", {"temperature": 0.5, "top_p": 0.5}, "top_p", id="chat_gpt-temperature-xor-top_p"
    ),
    pytest.param("claude", {"temperature": 0.5, "top_p": 0.5}, "top_p", id="claude-temperature-xor-top_p"),
    pytest.param("chat_gpt", {"system_message": "s" * 501}, "system_message", id="chat_gpt-system-max-500"),
    pytest.param("claude", {"system_message": "s" * 501}, "system_message", id="claude-system-max-500"),
    pytest.param("claude", {"system_message": ["a"]}, "system_message", id="system-must-be-string"),
    pytest.param(
        "chat_gpt",
        {"message_chain": [{"role": "user", "message": "hi"}] * 11},
        "message_chain",
        id="chat_gpt-chain-max-10",
    ),
    pytest.param(
        "claude",
        {"message_chain": [{"role": "assistant", "message": "hi"}]},
        "message_chain",
        id="claude-chain-role-user-or-ai",
    ),
    pytest.param(
        "chat_gpt",
        {"message_chain": [{"role": "user", "message": "m" * 501}]},
        "message_chain",
        id="chain-message-max-500",
    ),
    pytest.param("claude", {"message_chain": ["hi"]}, "message_chain", id="chain-items-are-objects"),
    pytest.param("chat_gpt", {"message_chain": {"role": "user"}}, "message_chain", id="chain-must-be-array"),
    pytest.param("chat_gpt", {"tag": "t" * 256}, "tag", id="chat_gpt-tag-max-255"),
    pytest.param("claude", {"tag": "t" * 256}, "tag", id="claude-tag-max-255"),
    pytest.param("chat_gpt", {"pingback_url": "not a url"}, "pingback_url", id="pingback-must-be-http-url"),
    pytest.param(
        "chat_gpt",
        {"model_name": "gpt-4o-mini", "web_search": True},
        "web_search",
        id="chat_gpt-web_search-needs-support",
    ),
    pytest.param(
        "chat_gpt", {"model_name": "o1", "web_search": True}, "web_search", id="chat_gpt-o1-has-no-web-search"
    ),
    pytest.param("claude", {"web_search": "true"}, "web_search", id="web_search-must-be-bool"),
    pytest.param(
        "chat_gpt", {"force_web_search": True}, "force_web_search", id="chat_gpt-force-needs-web_search"
    ),
    pytest.param(
        "claude",
        {"web_search": False, "force_web_search": True},
        "force_web_search",
        id="claude-force-needs-web_search",
    ),
    pytest.param("claude", {"force_web_search": 1}, "force_web_search", id="force-must-be-bool"),
    pytest.param(
        "chat_gpt",
        {"web_search_country_iso_code": "FR"},
        "web_search_country_iso_code",
        id="chat_gpt-country-needs-web_search",
    ),
    pytest.param(
        "claude",
        {"web_search_country_iso_code": "FR"},
        "web_search_country_iso_code",
        id="claude-country-needs-web_search",
    ),
    pytest.param(
        "chat_gpt",
        {"web_search": True, "web_search_city": "Paris"},
        "web_search_city",
        id="chat_gpt-city-needs-country",
    ),
    pytest.param(
        "claude",
        {"web_search": True, "web_search_city": "Paris"},
        "web_search_city",
        id="claude-city-needs-country",
    ),
    pytest.param(
        "chat_gpt",
        {"web_search": True, "web_search_country_iso_code": "France"},
        "web_search_country_iso_code",
        id="chat_gpt-country-two-letters",
    ),
    pytest.param(
        "claude",
        {"web_search": True, "web_search_country_iso_code": "UA"},
        "web_search_country_iso_code",
        id="claude-country-in-the-36",
    ),
    pytest.param(
        "chat_gpt",
        {"model_name": "o3-mini", "temperature": 0.5},
        "temperature",
        id="chat_gpt-reasoning-no-temperature",
    ),
    pytest.param("chat_gpt", {"model_name": "o1", "top_p": 0.5}, "top_p", id="chat_gpt-reasoning-no-top_p"),
    pytest.param(
        "chat_gpt",
        {"model_name": "o3-mini", "web_search": True, "force_web_search": True},
        "force_web_search",
        id="chat_gpt-reasoning-no-force_web_search",
    ),
    pytest.param(
        "chat_gpt",
        {"model_name": "o3-mini", "web_search": True, "web_search_country_iso_code": "FR"},
        "web_search_country_iso_code",
        id="chat_gpt-o3-mini-no-country",
    ),
    pytest.param(
        "claude",
        {"use_reasoning": True},
        "use_reasoning",
        id="claude-use_reasoning-needs-reasoning-model",
    ),
    pytest.param(
        "claude",
        {"model_name": "claude-sonnet-4-5", "use_reasoning": True, "temperature": 0.5},
        "temperature",
        id="claude-use_reasoning-no-temperature",
    ),
    pytest.param(
        "claude",
        {"model_name": "claude-sonnet-4-5", "use_reasoning": True, "top_p": 0.5},
        "top_p",
        id="claude-use_reasoning-no-top_p",
    ),
    pytest.param(
        "claude",
        {
            "model_name": "claude-sonnet-4-5",
            "use_reasoning": True,
            "web_search": True,
            "force_web_search": True,
        },
        "force_web_search",
        id="claude-use_reasoning-no-force_web_search",
    ),
    pytest.param("claude", {"use_reasoning": "yes"}, "use_reasoning", id="use_reasoning-must-be-bool"),
    pytest.param("chat_gpt", {"use_reasoning": False}, "use_reasoning", id="chat_gpt-has-no-use_reasoning"),
    pytest.param("chat_gpt", {"colour": "blue"}, "colour", id="chat_gpt-unknown-field"),
    pytest.param("claude", {"se": "claude"}, "se", id="claude-unknown-field"),
]


@pytest.mark.parametrize(("provider", "fields", "field"), REJECTED)
def test_task_post_rejects_a_task_that_breaks_a_field_rule(client, provider, fields, field):
    response = post(client, provider, "task_post", [make_task(provider, **fields)])

    task = only_task(response)
    assert task["status_code"] == 40501
    assert task["status_message"].startswith(f"Invalid Field: '{field}'.")
    assert task["cost"] == 0
    assert task["result"] is None
    assert response.json()["tasks_error"] == 1
    assert not SandboxTask.objects.exists()


@pytest.mark.parametrize(("provider", "fields", "field"), [p for p in REJECTED if "task_post" not in p.id])
def test_live_applies_the_same_field_rules(client, provider, fields, field):
    task = only_task(post(client, provider, "live", [make_task(provider, **fields)]))

    assert task["status_code"] == 40501
    assert task["status_message"].startswith(f"Invalid Field: '{field}'.")
    assert task["cost"] == 0


ACCEPTED = [
    pytest.param("chat_gpt", {}, id="chat_gpt-minimal"),
    pytest.param("claude", {}, id="claude-minimal"),
    pytest.param("chat_gpt", {"model_name": "gpt-4.1-2025-04-14"}, id="dated-model-name"),
    pytest.param("chat_gpt", {"user_prompt": "p" * 500, "tag": "t" * 255}, id="prompt-500-tag-255"),
    pytest.param(
        "chat_gpt",
        {"model_name": "gpt-4.1", "temperature": 2, "max_output_tokens": 16, "system_message": "s" * 500},
        id="chat_gpt-temperature-2-tokens-16",
    ),
    pytest.param("chat_gpt", {"top_p": 0, "max_output_tokens": 4096}, id="chat_gpt-top_p-0-tokens-4096"),
    pytest.param(
        "chat_gpt",
        {
            "web_search": True,
            "force_web_search": True,
            "web_search_country_iso_code": "FR",
            "web_search_city": "Paris",
        },
        id="chat_gpt-full-web-search",
    ),
    pytest.param(
        "chat_gpt",
        {"model_name": "o3-mini", "max_output_tokens": 1024, "web_search": True},
        id="chat_gpt-o3-mini",
    ),
    pytest.param("chat_gpt", {"model_name": "o1", "force_web_search": False}, id="chat_gpt-o1-force-false"),
    pytest.param(
        "claude",
        {"message_chain": [{"role": "user", "message": "m" * 500}, {"role": "ai", "message": "a"}] * 5},
        id="claude-chain-of-10",
    ),
    pytest.param("claude", {"temperature": 1, "max_output_tokens": 1}, id="claude-temperature-1-tokens-1"),
    pytest.param("claude", {"top_p": 1}, id="claude-top_p-1"),
    pytest.param(
        "claude",
        {
            "model_name": "claude-sonnet-4-5",
            "use_reasoning": True,
            "max_output_tokens": 1025,
            "web_search": True,
            "web_search_country_iso_code": "DE",
            "web_search_city": "Berlin",
        },
        id="claude-reasoning-with-location",
    ),
    pytest.param("claude", {"web_search": True, "force_web_search": True}, id="claude-forced-web-search"),
    pytest.param("claude", {"temperature": None, "tag": None}, id="nulls-count-as-absent"),
    pytest.param(
        "chat_gpt",
        {
            "pingback_url": "https://example.com/ping?id=$id",
            "postback_url": "http://example.com/post?tag=$tag",
        },
        id="callback-urls",
    ),
]


@pytest.mark.parametrize(("provider", "fields"), ACCEPTED)
def test_task_post_accepts_a_task_within_the_rules(client, settings, provider, fields):
    settings.SANDBOX_DELIVER_CALLBACKS = False
    task = only_task(post(client, provider, "task_post", [make_task(provider, **fields)]))

    assert task["status_code"] == 20100, task["status_message"]
    assert task["status_message"] == "Task Created."
    assert task["result"] is None
    assert TASK_ID.match(task["id"])


@pytest.mark.parametrize(
    ("provider", "model_name"),
    [("chat_gpt", "o1-pro"), ("claude", "claude-opus-4-1")],
    ids=["o1-pro", "opus"],
)
def test_live_accepts_models_that_task_post_refuses(client, provider, model_name):
    fields = {"model_name": model_name}
    if provider == "chat_gpt":
        fields["max_output_tokens"] = 1024
    task = only_task(post(client, provider, "live", [make_task(provider, **fields)]))

    assert task["status_code"] == 20000


def test_live_rejects_callback_urls(client):
    task = only_task(post(client, "chat_gpt", "live", [make_task(pingback_url="https://example.com/p")]))

    assert task["status_code"] == 40501
    assert "'pingback_url'" in task["status_message"]


# --- §3 envelope, prices, limits ----------------------------------------------------------------------------


def test_task_post_charges_prepayment_plus_base_fee_per_accepted_task(client):
    response = post(client, "chat_gpt", "task_post", [make_task(), make_task("chat_gpt", model_name="gpt-9")])

    body = response.json()
    assert response.status_code == 200
    assert set(body) == {
        "version",
        "status_code",
        "status_message",
        "time",
        "cost",
        "tasks_count",
        "tasks_error",
        "tasks",
    }
    assert (body["status_code"], body["status_message"]) == (20000, "Ok.")
    assert (body["tasks_count"], body["tasks_error"]) == (2, 1)
    assert body["cost"] == pytest.approx(0.0102)
    accepted, rejected = body["tasks"]
    assert set(accepted) == {
        "id",
        "status_code",
        "status_message",
        "time",
        "cost",
        "result_count",
        "path",
        "data",
        "result",
    }
    assert accepted["cost"] == pytest.approx(0.0102)
    assert accepted["path"] == ["v3", "ai_optimization", "chat_gpt", "llm_responses", "task_post"]
    assert (
        accepted["data"]
        == {"api": "ai_optimization", "function": "llm_responses", "se": "chat_gpt"} | make_task()
    )
    assert rejected["cost"] == 0
    assert rejected["data"]["model_name"] == "gpt-9"


def test_task_post_total_cost_is_the_sum_of_the_tasks(client):
    body = post(client, "claude", "task_post", [make_task("claude")] * 3).json()

    assert body["cost"] == pytest.approx(3 * 0.0102)


def test_task_post_accepts_100_tasks_and_refuses_the_101st_with_40006(client):
    tasks = [make_task(tag=f"t{i}") for i in range(102)]

    body = post(client, "chat_gpt", "task_post", tasks).json()

    codes = [task["status_code"] for task in body["tasks"]]
    assert codes == [20100] * 100 + [40006, 40006]
    assert body["tasks_error"] == 2
    assert body["cost"] == pytest.approx(100 * 0.0102)
    assert SandboxTask.objects.count() == 100


def test_live_with_two_tasks_is_a_40000(client):
    body = post(client, "chat_gpt", "live", [make_task(), make_task()]).json()

    assert body["status_code"] == 40000
    assert [task["status_code"] for task in body["tasks"]] == [40000, 40000]
    assert body["cost"] == 0
    assert not SandboxTask.objects.exists()


def test_live_answers_at_once_and_costs_base_price_plus_money_spent(client):
    body = post(client, "claude", "live", [make_task("claude")]).json()

    task = body["tasks"][0]
    assert task["status_code"] == 20000
    assert task["result_count"] == 1
    spent = task["result"][0]["money_spent"]
    assert task["cost"] == pytest.approx(0.0006 + spent)
    assert body["cost"] == pytest.approx(0.0006 + spent)


def test_a_task_post_reply_takes_the_post_delay_after_its_task_is_accepted(client, settings):
    settings.SANDBOX_POST_DELAY = 0.3

    started = time.monotonic()
    task_id = only_task(post(client, "chat_gpt", "task_post", [make_task()]))["id"]

    assert time.monotonic() - started >= 0.3
    assert SandboxTask.objects.filter(pk=task_id).exists()


def test_task_get_says_handed_then_in_queue_until_ready(client, settings):
    settings.SANDBOX_TASK_DELAY = 30
    task_id = only_task(post(client, "chat_gpt", "task_post", [make_task()]))["id"]

    first = only_task(get(client, "chat_gpt", f"task_get/{task_id}"))
    SandboxTask.objects.filter(pk=task_id).update(created_at=timezone.now() - timezone.timedelta(seconds=15))
    later = only_task(get(client, "chat_gpt", f"task_get/{task_id}"))

    assert (first["status_code"], first["status_message"]) == (40601, "Task Handed.")
    assert (later["status_code"], later["status_message"]) == (40602, "Task In Queue.")
    assert later["result"] is None
    assert later["data"]["user_prompt"] == make_task()["user_prompt"]


def test_task_get_returns_the_documented_result_once_ready(client, settings):
    settings.SANDBOX_TASK_DELAY = 30
    task_id = only_task(post(client, "chat_gpt", "task_post", [make_task(tag="team-a")]))["id"]
    SandboxTask.objects.filter(pk=task_id).update(ready_at=timezone.now())

    response = get(client, "chat_gpt", f"task_get/{task_id}")

    body = response.json()
    task = only_task(response)
    assert body["cost"] == 0
    assert (task["status_code"], task["status_message"], task["result_count"]) == (20000, "Ok.", 1)
    assert task["path"] == ["v3", "ai_optimization", "chat_gpt", "llm_responses", "task_get", task_id]
    assert task["data"]["tag"] == "team-a"
    result = task["result"][0]
    assert set(result) == {
        "model_name",
        "input_tokens",
        "output_tokens",
        "reasoning_tokens",
        "web_search",
        "money_spent",
        "datetime",
        "items",
        "fan_out_queries",
    }
    assert result["model_name"] == "gpt-4.1-mini-2025-04-14"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+00:00", result["datetime"])
    assert result["input_tokens"] > 0 and result["output_tokens"] > 0 and result["reasoning_tokens"] == 0
    assert result["web_search"] is False
    assert [item["type"] for item in result["items"]] == ["message"]
    assert answer_of(task)["type"] == "text"
    assert task["cost"] == pytest.approx(0.0002 + result["money_spent"])


def test_output_tokens_follow_the_text(client, ready_at_once):
    task = finished(client)

    result = task["result"][0]
    assert result["output_tokens"] == pytest.approx(len(answer_of(task)["text"]) / 4, abs=1)


def test_money_spent_is_a_few_thousandths_for_a_small_model(client, ready_at_once):
    spent = finished(client, model_name="gpt-4.1")["result"][0]["money_spent"]

    assert 0.0005 < spent < 0.02


def test_max_output_tokens_truncates_the_answer(client, ready_at_once):
    short = finished(client, "claude", max_output_tokens=5)
    longer = finished(client, "claude")

    assert short["result"][0]["output_tokens"] <= 5
    assert len(answer_of(short)["text"]) < len(answer_of(longer)["text"])


def test_task_get_of_an_unknown_id_is_40401(client):
    task = only_task(get(client, "chat_gpt", "task_get/01010000-1535-0612-0000-000000000000"))

    assert (task["status_code"], task["status_message"]) == (40401, "Task Not Found.")


def test_task_get_hides_another_accounts_task(client, settings, ready_at_once):
    settings.SANDBOX_API_KEYS = ["sandbox-key", "other-key"]
    task_id = only_task(post(client, "chat_gpt", "task_post", [make_task()]))["id"]

    other_key = only_task(
        get(client, "chat_gpt", f"task_get/{task_id}", auth={"HTTP_AUTHORIZATION": "Bearer other-key"})
    )
    other_route = only_task(get(client, "chat_gpt", f"task_get/{task_id}", route=DATAFORSEO, auth=BASIC))
    other_provider = only_task(get(client, "claude", f"task_get/{task_id}"))

    assert other_key["status_code"] == other_route["status_code"] == other_provider["status_code"] == 40401


def test_dataforseo_route_works_with_http_basic(client, ready_at_once):
    accepted = only_task(
        post(client, "claude", "task_post", [make_task("claude")], route=DATAFORSEO, auth=BASIC)
    )
    collected = only_task(get(client, "claude", f"task_get/{accepted['id']}", route=DATAFORSEO, auth=BASIC))

    assert accepted["status_code"] == 20100
    assert collected["status_code"] == 20000
    assert SandboxTask.objects.get().account == "login:sandbox@example.com"


# --- Answers ------------------------------------------------------------------------------------------------


def test_annotations_and_fan_out_only_when_web_search_ran(client, ready_at_once):
    plain = finished(client, "claude")
    searched = finished(client, "claude", web_search=True)

    assert answer_of(plain)["annotations"] is None
    assert plain["result"][0]["fan_out_queries"] == []
    annotations = answer_of(searched)["annotations"]
    assert annotations
    assert all(set(a) == {"title", "url"} for a in annotations)
    assert searched["result"][0]["fan_out_queries"]
    assert searched["result"][0]["web_search"] is True


def test_chat_gpt_annotations_point_at_a_span_of_the_answer(client, ready_at_once):
    section = answer_of(finished(client, web_search=True))

    assert section["annotations"]
    for annotation in section["annotations"]:
        span = section["text"][annotation["start_index"] : annotation["end_index"]]
        assert span == annotation["text"]
        assert annotation["url"] in span


@pytest.mark.parametrize(
    ("provider", "fields", "reasons"),
    [
        ("chat_gpt", {"model_name": "o3-mini"}, True),
        ("chat_gpt", {"model_name": "gpt-4.1"}, False),
        ("claude", {"model_name": "claude-sonnet-4-5", "use_reasoning": True}, True),
        ("claude", {"model_name": "claude-sonnet-4-5"}, False),
    ],
    ids=["chat_gpt-reasoning-model", "chat_gpt-plain-model", "claude-use_reasoning", "claude-without"],
)
def test_reasoning_item_only_for_reasoning_runs(client, ready_at_once, provider, fields, reasons):
    result = finished(client, provider, **fields)["result"][0]

    reasoning = [item for item in result["items"] if item["type"] == "reasoning"]
    assert bool(reasoning) is reasons
    assert (result["reasoning_tokens"] > 0) is reasons
    if reasons:
        assert reasoning[0]["sections"][0]["type"] == "summary_text"
        assert reasoning[0]["sections"][0]["text"]


def test_the_same_request_gives_the_same_answer(client, ready_at_once):
    fields = {"system_message": "Be brief.", "message_chain": [{"role": "user", "message": "Hello"}]}
    first = finished(client, **fields)
    again = finished(client, **fields)
    other = finished(client, user_prompt="Which Scandinavian castles attract the most visitors?")

    assert answer_of(first)["text"] == answer_of(again)["text"]
    assert first["result"][0]["money_spent"] == again["result"][0]["money_spent"]
    assert answer_of(first)["text"] != answer_of(other)["text"]


def test_answers_read_like_markdown_about_the_prompt(client, ready_at_once):
    task = finished(client, user_prompt="Which Scandinavian castles attract the most visitors?")
    text = answer_of(task)["text"]

    assert text.startswith("## ")
    assert "\n- **" in text
    assert "scandinavian" in text.lower() and "castles" in text.lower()
    assert text.count("\n\n") >= 3


# --- Catalog, tasks_ready, user_data ------------------------------------------------------------------------


def test_models_lists_the_catalog_for_free(client):
    chat_gpt = only_task(get(client, "chat_gpt", "models"))
    claude = only_task(get(client, "claude", "models", route=DATAFORSEO, auth=BASIC))

    by_name = {m["model_name"]: m for m in chat_gpt["result"] + claude["result"]}
    assert chat_gpt["cost"] == claude["cost"] == 0
    assert set(by_name["gpt-4.1"]) == {
        "model_name",
        "reasoning",
        "web_search_supported",
        "task_post_supported",
    }
    assert by_name["gpt-4.1"]["web_search_supported"] is True
    assert by_name["gpt-4o-mini"]["web_search_supported"] is False
    assert by_name["o3-mini"]["reasoning"] is True
    assert by_name["o1-pro"]["task_post_supported"] is False
    assert by_name["claude-sonnet-4-5"]["reasoning"] is True
    assert by_name["claude-3-5-haiku"]["reasoning"] is False
    assert by_name["claude-opus-4-1"]["task_post_supported"] is False
    assert "claude-sonnet-4-5-20250929" in by_name


def test_tasks_ready_lists_finished_uncollected_tasks_of_the_account(client, settings):
    settings.SANDBOX_TASK_DELAY = 0
    ready_id = only_task(post(client, "chat_gpt", "task_post", [make_task(tag="ready")]))["id"]
    collected_id = only_task(post(client, "chat_gpt", "task_post", [make_task(tag="collected")]))["id"]
    get(client, "chat_gpt", f"task_get/{collected_id}")
    post(client, "chat_gpt", "task_post", [make_task(tag="other account")], route=DATAFORSEO, auth=BASIC)
    settings.SANDBOX_TASK_DELAY = 60
    post(client, "chat_gpt", "task_post", [make_task(tag="not ready")])

    listing = only_task(get(client, "chat_gpt", "tasks_ready"))

    assert listing["status_code"] == 20000
    assert [(r["id"], r["tag"]) for r in listing["result"]] == [(ready_id, "ready")]
    entry = listing["result"][0]
    assert entry["se"] == "chat_gpt" and entry["function"] == "llm_responses"
    assert entry["endpoint_regular"].endswith(f"/llm_responses/task_get/{ready_id}")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+00:00", entry["date_posted"])
    assert only_task(get(client, "claude", "tasks_ready"))["result"] == []


def test_user_data_reports_a_balance_that_goes_down_with_charges(client, settings):
    settings.SANDBOX_TASK_DELAY = 60
    before = only_task(client.get("/sandbox/v3/appendix/user_data", **BASIC))["result"][0]["money"]["balance"]
    post(client, "chat_gpt", "task_post", [make_task()], route=DATAFORSEO, auth=BASIC)
    after = only_task(client.get("/sandbox/v3/appendix/user_data", **BASIC))["result"][0]["money"]["balance"]

    assert before == pytest.approx(100)
    assert after == pytest.approx(100 - 0.0102)


def test_user_data_exists_only_on_the_dataforseo_route(client):
    assert client.get("/sandbox/apis/v1/dataforseo/appendix/user_data", **BEARER).status_code == 404
    assert client.get("/sandbox/v3/appendix/user_data", **BEARER).status_code == 401


# --- Authentication, paths, bodies --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth",
    [{}, {"HTTP_AUTHORIZATION": "Bearer wrong-key"}, {"HTTP_AUTHORIZATION": "Bearer "}, BASIC],
    ids=["missing", "wrong-key", "empty", "basic-on-aisa"],
)
def test_aisa_route_answers_401_with_aisas_error_body(client, auth):
    response = post(client, "chat_gpt", "task_post", [make_task()], auth=auth)

    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("authentication_error", "invalid_api_key")
    assert error["message"] and error["request_id"]
    assert not SandboxTask.objects.exists()


@pytest.mark.parametrize(
    "auth",
    [
        {},
        {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"sandbox@example.com:wrong").decode()},
        {"HTTP_AUTHORIZATION": "Basic not-base64!"},
        BEARER,
    ],
    ids=["missing", "wrong-password", "garbage", "bearer-on-dataforseo"],
)
def test_dataforseo_route_answers_401_with_an_envelope(client, auth):
    response = get(client, "claude", "models", route=DATAFORSEO, auth=auth)

    assert response.status_code == 401
    assert response.json()["status_code"] == 40100
    assert response.json()["tasks"] is None


@pytest.mark.parametrize(
    "path",
    [
        f"{AISA}/bard/llm_responses/models",
        f"{AISA}/chat_gpt/llm_responses/nothing",
        f"{DATAFORSEO}/chat_gpt/llm_responses/task_get/",
        "/sandbox/v3/serp/google/organic/live",
    ],
)
def test_unknown_paths_are_404(client, path):
    assert client.get(path, **BEARER).status_code == 404
    assert client.get(path, **BASIC).status_code == 404


def test_wrong_method_is_405(client):
    assert get(client, "chat_gpt", "task_post").status_code == 405
    assert post(client, "chat_gpt", "models", [], route=DATAFORSEO, auth=BASIC).status_code == 405


@pytest.mark.parametrize("enforce_csrf", [False, True])
@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"", "application/x-www-form-urlencoded"), (b"a=1&b=2", "application/x-www-form-urlencoded"),
     (b"", "application/json"), (b'[{"id": "x"}]', "application/json"), ({}, None), ({"a": "1"}, None)],
    ids=["empty-form", "form", "empty-json", "json", "empty-multipart", "multipart"],
)  # fmt: skip
def test_a_post_to_task_get_is_the_apis_405_whatever_its_body(body, content_type, enforce_csrf):
    client = Client(enforce_csrf_checks=enforce_csrf)
    for route, auth in ((AISA, BEARER), (DATAFORSEO, BASIC)):
        url = f"{route}/chat_gpt/llm_responses/task_get/abc-1"
        as_form = {} if content_type is None else {"content_type": content_type}  # None: a multipart form

        response = client.post(url, body, **as_form, **auth)

        assert response.status_code == 405, (route, response.content)
        assert response["Allow"] == "GET"
        payload = response.json()
        if route == AISA:
            assert payload["error"]["code"] == "method_not_allowed"
        else:
            assert (payload["status_code"], payload["tasks"]) == (40405, None)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"{}", b"[]", b'"a string"', b"null", b"\xff\xfe\x00", b'[{"user_prompt": ', b"[[1], 2]"],
    ids=["text", "object", "empty-array", "string", "null", "binary", "truncated", "non-object-items"],
)
def test_malformed_bodies_get_an_envelope_never_a_500(client, body):
    response = post(client, "chat_gpt", "task_post", body)

    assert response.status_code == 200
    payload = response.json()
    if payload["tasks"]:
        assert all(task["status_code"] == 40501 for task in payload["tasks"])
    else:
        assert payload["status_code"] == 40000


def test_post_views_need_no_csrf_token_nor_login():
    client = Client(enforce_csrf_checks=True)

    assert only_task(post(client, "chat_gpt", "task_post", [make_task()]))["status_code"] == 20100


# --- Faults -------------------------------------------------------------------------------------------------


def test_rate_limit_fault_answers_429_and_processes_nothing(client):
    faults.inject("rate_limit", function="task_post", times=2, retry_after=3)

    responses = [post(client, "chat_gpt", "task_post", [make_task()]) for _ in range(3)]

    assert [r.status_code for r in responses] == [429, 429, 200]
    limited = responses[0]
    assert limited["Retry-After"] == "3"
    assert limited["X-RateLimit-Remaining"] == "0"
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert SandboxTask.objects.count() == 1
    assert not faults.pending()


def test_internal_error_fault_gives_status_50000_and_charges_nothing(client):
    faults.inject("internal_error", function="task_post")

    body = post(client, "claude", "task_post", [make_task("claude")]).json()

    assert body["tasks"][0]["status_code"] == 50000
    assert body["tasks"][0]["status_message"] == "Internal Error."
    assert body["cost"] == 0
    assert not SandboxTask.objects.exists()


@pytest.mark.parametrize("mode", ["http500", "malformed"])
def test_broken_reply_faults_accept_the_task_first(client, mode):
    faults.inject(mode, function="task_post")

    response = post(client, "chat_gpt", "task_post", [make_task()])

    assert SandboxTask.objects.count() == 1
    if mode == "http500":
        assert response.status_code == 500
        assert b"Internal Server Error" in response.content
    else:
        assert response.status_code == 200
        with pytest.raises(ValueError):
            json.loads(response.content)


def test_hang_fault_sleeps_then_answers_normally(client):
    faults.inject("hang", function="task_post", seconds=0.3)

    started = time.monotonic()
    task = only_task(post(client, "chat_gpt", "task_post", [make_task()]))

    assert time.monotonic() - started >= 0.3
    assert task["status_code"] == 20100
    assert SandboxTask.objects.count() == 1


def test_a_broken_task_get_reply_does_not_collect_the_task(client, ready_at_once):
    task_id = only_task(post(client, "chat_gpt", "task_post", [make_task()]))["id"]
    faults.inject("http500", function="task_get")

    assert get(client, "chat_gpt", f"task_get/{task_id}").status_code == 500
    assert [r["id"] for r in only_task(get(client, "chat_gpt", "tasks_ready"))["result"]] == [task_id]


def test_faults_match_function_and_provider(client):
    faults.inject("http500", function="task_get")
    faults.inject("http500", function="task_post", provider="claude")

    assert post(client, "chat_gpt", "task_post", [make_task()]).status_code == 200
    assert post(client, "claude", "task_post", [make_task("claude")]).status_code == 500
    assert [f.function for f in faults.pending()] == ["task_get"]
    faults.clear()
    assert not faults.pending()


def test_fault_control_over_http(client):
    created = client.post(
        "/sandbox/_faults/", {"mode": "rate_limit", "function": "live", "times": 2}, "application/json"
    )
    listed = client.get("/sandbox/_faults/").json()["faults"]
    refused = client.post("/sandbox/_faults/", {"mode": "explode"}, "application/json")
    cleared = client.delete("/sandbox/_faults/")

    assert created.status_code == 201
    assert [(f["mode"], f["function"], f["remaining"]) for f in listed] == [("rate_limit", "live", 2)]
    assert refused.status_code == 400
    assert cleared.json() == {"cleared": 1}


def test_inject_refuses_unknown_modes_and_functions():
    with pytest.raises(ValueError):
        faults.inject("explode")
    with pytest.raises(ValueError):
        faults.inject("hang", function="task_gets")


def test_task_refused_fault_refuses_the_marked_task_of_a_call_once_and_accepts_the_others(client):
    faults.inject("task_refused", prompt_contains="[refuse]")
    marked = make_task(user_prompt="Second [refuse]")

    body = post(client, "chat_gpt", "task_post", [make_task(), marked, make_task()]).json()
    again = only_task(post(client, "chat_gpt", "task_post", [marked]))

    assert [task["status_code"] for task in body["tasks"]] == [20100, 50000, 20100]
    assert body["tasks"][1]["status_message"] == "Internal Error." and body["tasks"][1]["cost"] == 0
    assert body["tasks_error"] == 1
    assert again["status_code"] == 20100  # one firing: the resend is accepted
    assert sorted(SandboxTask.objects.values_list("data__user_prompt", flat=True)) == sorted(
        [make_task()["user_prompt"]] * 2 + ["Second [refuse]"]
    )
    assert list(SandboxRequest.objects.order_by("id").values_list("fault", flat=True)) == ["task_refused", ""]
    assert not faults.pending()


def test_task_refused_fault_by_position_with_its_code_fires_only_on_calls_it_matches(client):
    faults.inject("task_refused", position=1, status_code=50301, times=2)

    alone = only_task(post(client, "chat_gpt", "task_post", [make_task()]))  # no task at position 1
    first = post(client, "chat_gpt", "task_post", [make_task(), make_task()]).json()["tasks"]
    second = post(client, "chat_gpt", "task_post", [make_task(), make_task()]).json()["tasks"]
    third = post(client, "chat_gpt", "task_post", [make_task(), make_task()]).json()["tasks"]

    assert alone["status_code"] == 20100
    assert [task["status_code"] for task in first + second] == [20100, 50301] * 2
    assert [task["status_code"] for task in third] == [20100, 20100]
    assert SandboxTask.objects.count() == 5


def test_task_refused_fault_is_checked_when_injected():
    with pytest.raises(ValueError):
        faults.inject("task_refused", function="task_get")
    with pytest.raises(ValueError):
        faults.inject("task_refused", function="tasks_ready")
    with pytest.raises(ValueError):
        faults.inject("task_refused", status_code=20100)
    with pytest.raises(ValueError):
        faults.inject("task_refused", position=100)
    with pytest.raises(ValueError):
        faults.inject("http500", prompt_contains="x")
    assert faults.inject("task_refused").function == "task_post"


def test_task_refused_fault_over_http(client):
    spec = {"mode": "task_refused", "prompt_contains": "[refuse]", "status_code": 50001, "position": 0}
    created = client.post("/sandbox/_faults/", spec, "application/json")
    bad = client.post("/sandbox/_faults/", {"mode": "task_refused", "position": "first"}, "application/json")

    assert created.status_code == 201
    assert (created.json()["prompt_contains"], created.json()["status_code"], created.json()["position"]) == (
        "[refuse]",
        50001,
        0,
    )
    assert bad.status_code == 400
    task = only_task(post(client, "chat_gpt", "task_post", [make_task(user_prompt="[refuse] me")]))
    assert (task["status_code"], task["cost"]) == (50001, 0)


def test_task_refused_fault_on_live_refuses_that_call_once_without_running_it(client):
    faults.inject("task_refused", function="live", status_code=40202)
    queued = only_task(post(client, "chat_gpt", "task_post", [make_task()]))  # a live fault: not task_post

    refused = only_task(post(client, "chat_gpt", "live", [make_task()]))
    again = only_task(post(client, "chat_gpt", "live", [make_task()]))

    assert queued["status_code"] == 20100
    assert (refused["status_code"], refused["status_message"], refused["cost"]) == (
        40202,
        "Rate limit per minute exceeded.",
        0,
    )
    assert refused["result"] is None
    assert again["status_code"] == 20000 and again["cost"] > 0  # one firing: the resend is run
    assert SandboxTask.objects.filter(mode=SandboxTask.Mode.LIVE).count() == 1
    assert list(SandboxRequest.objects.order_by("id").values_list("fault", flat=True)) == [
        "",
        "task_refused",
        "",
    ]
    assert faults.inject("task_refused", function="live").function == "live"


@pytest.mark.django_db(transaction=True)
def test_reset_fault_closes_the_connection_after_accepting(live_server):
    faults.inject("reset", function="task_post")
    request = urllib.request.Request(  # noqa: S310 (a live_server URL)
        f"{live_server.url}{AISA}/chat_gpt/llm_responses/task_post",
        data=json.dumps([make_task()]).encode(),
        headers={"Authorization": "Bearer sandbox-key", "Content-Type": "application/json"},
        method="POST",
    )

    with pytest.raises(ConnectionError):
        urllib.request.urlopen(request, timeout=5)  # noqa: S310

    assert SandboxTask.objects.count() == 1


# --- Request log --------------------------------------------------------------------------------------------


def test_request_log_counts_what_arrived(client):
    post(client, "chat_gpt", "task_post", [make_task(), make_task()])
    post(client, "claude", "task_post", [make_task("claude")], auth={})
    get(client, "chat_gpt", "tasks_ready")
    post(client, "chat_gpt", "live", [make_task()])

    assert stats.post_count() == 2
    assert stats.post_count(provider="claude") == 1
    assert stats.post_count("live") == 1
    assert stats.tasks_posted() == 3
    assert stats.request_count(http_status=401) == 1
    assert stats.request_count(function="tasks_ready") == 1
    logged = SandboxRequest.objects.filter(function="task_post", provider="chat_gpt").get()
    assert (logged.account.startswith("key:"), logged.tasks_in_body, logged.http_status) == (True, 2, 200)
    assert client.get("/sandbox/_requests/?function=task_post&method=post").json()["count"] == 2
    assert stats.clear() == 4


def test_request_log_records_the_fault_that_fired(client):
    faults.inject("rate_limit", function="task_post")

    post(client, "chat_gpt", "task_post", [make_task()])

    assert SandboxRequest.objects.get().fault == "rate_limit"
    assert stats.post_count() == 1


# --- Callbacks ----------------------------------------------------------------------------------------------


@pytest.fixture
def receiver():
    """A tiny HTTP server on 127.0.0.1 that records every request it gets."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            received.append(SimpleNamespace(method="GET", path=self.path, headers=self.headers, body=b""))
            self.send_response(204)
            self.end_headers()

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(SimpleNamespace(method="POST", path=self.path, headers=self.headers, body=body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}", received=received)
    server.shutdown()
    server.server_close()


def test_callbacks_are_delivered_once_with_id_and_tag(client, ready_at_once, receiver):
    fields = {
        "tag": "team a&b",
        "pingback_url": f"{receiver.url}/ping?id=$id&tag=$tag",
        "postback_url": f"{receiver.url}/post/$id",
    }
    task_id = only_task(post(client, "chat_gpt", "task_post", [make_task(**fields)]))["id"]

    assert delivery.deliver_callbacks(task_id) is True
    assert delivery.deliver_callbacks(task_id) is False

    ping, postback = sorted(receiver.received, key=lambda r: r.method)
    assert ping.path == f"/ping?id={task_id}&tag=team%20a%26b"
    assert postback.path == f"/post/{task_id}"
    assert postback.headers["Content-Encoding"] == "gzip"
    assert postback.headers["Content-Type"] == "application/json"
    assert postback.body[:2] == b"\x1f\x8b"
    envelope = json.loads(gzip.decompress(postback.body))
    assert envelope["tasks"][0]["id"] == task_id
    assert envelope["tasks"][0]["status_code"] == 20000
    row = SandboxTask.objects.get()
    assert (row.pingback_outcome, row.postback_outcome) == ("HTTP 204", "HTTP 200")
    assert only_task(get(client, "chat_gpt", "tasks_ready"))["result"] == []


def test_failed_callbacks_are_recorded_not_raised(client, ready_at_once, receiver):
    # A port that was just free: nothing listens there.
    url = receiver.url.rsplit(":", 1)[0] + ":9"
    accepted = post(client, "claude", "task_post", [make_task("claude", postback_url=f"{url}/x")])
    task_id = only_task(accepted)["id"]

    assert delivery.deliver_callbacks(task_id) is True

    row = SandboxTask.objects.get()
    assert row.postback_outcome.startswith("error:")
    assert [r["id"] for r in only_task(get(client, "claude", "tasks_ready"))["result"]] == [task_id]


def test_callback_url_encodes_tag_and_special_characters():
    url = delivery.callback_url("https://x.test/cb?id=$id&tag=$tag#frag", task_id="abc", tag="a b/c")

    assert url == "https://x.test/cb?id=abc&tag=a%20b%2Fc%23frag"


def test_no_delivery_when_switched_off(settings, monkeypatch):
    settings.SANDBOX_DELIVER_CALLBACKS = False
    monkeypatch.setattr(threading, "Timer", None)  # would fail if a timer were started

    delivery.schedule("any-id", 0)


@pytest.mark.django_db(transaction=True)
def test_callbacks_arrive_by_themselves_when_the_task_is_ready(live_server, settings, receiver):
    settings.SANDBOX_TASK_DELAY = 0.2
    settings.SANDBOX_DELIVER_CALLBACKS = True
    request = urllib.request.Request(  # noqa: S310 (a live_server URL)
        f"{live_server.url}{AISA}/chat_gpt/llm_responses/task_post",
        data=json.dumps([make_task(pingback_url=f"{receiver.url}/ping?id=$id")]).encode(),
        headers={"Authorization": "Bearer sandbox-key", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        task_id = json.load(response)["tasks"][0]["id"]

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not SandboxTask.objects.filter(pingback_outcome__gt="").exists():
        time.sleep(0.05)

    assert [r.path for r in receiver.received] == [f"/ping?id={task_id}"]
    assert SandboxTask.objects.get().pingback_outcome == "HTTP 204"


def test_money_is_recorded_as_charged_then_final(client, ready_at_once):
    task = finished(client)

    row = SandboxTask.objects.get()
    assert row.charged == Decimal("0.0102")
    assert row.cost == Decimal("0.0002") + Decimal(str(task["result"][0]["money_spent"]))


def test_many_due_callbacks_are_sent_a_few_at_a_time(settings, monkeypatch):
    """A 2,000-row batch on two models makes 4,000 tasks ready at once. One thread per task sent 4,000
    callbacks into the same dev server at once: it stopped answering, and task_posts queued behind them
    timed out as replies lost. Deliveries run a few at a time, on a few threads."""
    settings.SANDBOX_DELIVER_CALLBACKS = True
    running, peak, done = 0, 0, []
    lock = threading.Lock()

    def deliver(task_id):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.002)
        with lock:
            running -= 1
            done.append(task_id)

    monkeypatch.setattr(delivery, "_deliver_in_background", deliver)
    threads_before = threading.active_count()

    for n in range(300):
        delivery.schedule(f"task-{n}", 0.05)
    started = threading.active_count() - threads_before

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(done) < 300:
        time.sleep(0.01)
    assert sorted(done) == sorted(f"task-{n}" for n in range(300))
    assert peak <= delivery.MAX_CONCURRENT_DELIVERIES
    assert started <= delivery.MAX_CONCURRENT_DELIVERIES
