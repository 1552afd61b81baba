"""The stand-in serves Gemini and Perplexity like ChatGPT and Claude: both route styles, their models,
their answers (Gemini's direct_url, Perplexity's items without reasoning), Perplexity's missing queue
endpoints, the live delay and the 30 concurrent live calls per provider per account. (Each rule of §2
has its test in tests/builder/test_gemini_perplexity_rules.py, beside the form's.)"""

import time

import pytest

from sandbox import auth as auth_module
from sandbox import faults
from sandbox import live as stand_in_live
from sandbox.models import SandboxTask
from tests.test_sandbox import AISA, BASIC, BEARER, DATAFORSEO, get, only_task, post

pytestmark = pytest.mark.django_db

PROMPT = "Which running shoes do marathon coaches recommend?"


def task(model: str, **fields) -> dict:
    return {"user_prompt": PROMPT, "model_name": model, **fields}


@pytest.mark.parametrize(("route", "auth"), [(AISA, BEARER), (DATAFORSEO, BASIC)])
@pytest.mark.parametrize("provider", ["gemini", "perplexity"])
def test_both_route_styles_list_the_models_and_answer_live(client, route, auth, provider):
    listed = only_task(get(client, provider, "models", route=route, auth=auth))["result"]
    model = listed[0]["model_name"]

    answered = only_task(post(client, provider, "live", [task(model)], route=route, auth=auth))

    assert {"model_name", "reasoning", "web_search_supported", "task_post_supported"} <= set(listed[0])
    assert answered["status_code"] == 20000
    assert answered["result"][0]["items"][-1]["type"] == "message"
    assert answered["path"][2] == provider


def test_the_models_list_says_which_gemini_models_can_be_queued(client):
    listed = {m["model_name"]: m for m in only_task(get(client, "gemini", "models"))["result"]}

    assert listed["gemini-2.5-pro"]["task_post_supported"] is False
    assert listed["gemini-2.5-flash"]["task_post_supported"] is True
    assert only_task(post(client, "gemini", "task_post", [task("gemini-2.5-flash")]))["status_code"] == 20100


@pytest.mark.parametrize(
    "function", ["task_post", "tasks_ready", "task_get/07171158-1535-0615-0000-edcdefadd850"]
)
def test_perplexity_has_no_queue_endpoints(client, function):
    if function == "task_post":
        response = post(client, "perplexity", function, [task("sonar")])
    else:
        response = get(client, "perplexity", function)

    assert response.status_code == 404
    assert not SandboxTask.objects.exists()


def test_gemini_annotations_carry_the_direct_url_beside_the_redirect(client):
    answered = only_task(post(client, "gemini", "live", [task("gemini-2.5-flash", web_search=True)]))

    annotations = answered["result"][0]["items"][-1]["sections"][0]["annotations"]
    assert annotations
    for annotation in annotations:
        assert annotation["url"].startswith("https://vertexaisearch.cloud.google.com/")
        assert annotation["direct_url"].startswith("https://")
        assert {"start_index", "end_index", "text"} <= set(annotation)


def test_gemini_pro_models_reason_even_when_not_asked(client):
    answered = only_task(post(client, "gemini", "live", [task("gemini-2.5-pro", max_output_tokens=1024)]))

    assert [item["type"] for item in answered["result"][0]["items"]] == ["reasoning", "message"]


def test_perplexity_sonar_always_searches_and_its_items_have_no_reasoning_wrapper(client):
    answered = only_task(post(client, "perplexity", "live", [task("sonar-reasoning")]))

    result = answered["result"][0]
    assert result["web_search"] is True
    assert [item["type"] for item in result["items"]] == ["message"]
    assert result["items"][0]["sections"][0]["annotations"]
    assert answered["cost"] == pytest.approx(0.0006 + result["money_spent"])


def test_a_live_answer_takes_the_live_delay(client, settings):
    settings.SANDBOX_LIVE_DELAY = 0.3

    started = time.monotonic()
    only_task(post(client, "perplexity", "live", [task("sonar")]))

    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize(("route", "auth"), [(AISA, BEARER), (DATAFORSEO, BASIC)])
def test_the_31st_concurrent_live_call_of_a_provider_is_refused_and_not_charged(client, route, auth):
    account = auth_module.account_for(
        route=auth_module.AISA if route == AISA else auth_module.DATAFORSEO,
        authorization=auth["HTTP_AUTHORIZATION"],
    )
    with _held_slots(account, "perplexity", 30):
        refused = post(client, "perplexity", "live", [task("sonar")], route=route, auth=auth)
        other_provider = post(client, "gemini", "live", [task("gemini-2.5-flash")], route=route, auth=auth)

    assert refused.status_code == 429
    assert refused["Retry-After"] == "1"
    assert "30 live tasks at once" in refused.content.decode()
    assert only_task(other_provider)["status_code"] == 20000  # each provider has its own 30
    assert SandboxTask.objects.filter(provider="perplexity").count() == 0
    assert only_task(post(client, "perplexity", "live", [task("sonar")], route=route, auth=auth))


def test_faults_apply_to_the_new_providers(client):
    faults.inject("internal_error", function="live", provider="gemini", times=1)

    assert only_task(post(client, "gemini", "live", [task("gemini-2.5-flash")]))["status_code"] == 50000
    assert only_task(post(client, "gemini", "live", [task("gemini-2.5-flash")]))["status_code"] == 20000


class _held_slots:
    """Hold `count` of an account's live slots for a provider, as calls in flight would."""

    def __init__(self, account: str, provider: str, count: int):
        self.contexts = [stand_in_live.live_slot(account=account, provider=provider) for _ in range(count)]

    def __enter__(self):
        assert all(context.__enter__() for context in self.contexts)

    def __exit__(self, *exc):
        for context in self.contexts:
            context.__exit__(None, None, None)
