"""Gemini's and Perplexity's rules (api-reference §2), one test each: a body breaking the rule is refused by
the builder's form and answered 40501 by the stand-in (on the endpoint the form would send it to); a valid
body passes both. Also the mode rules: Perplexity is live only, a model that cannot be queued goes Live,
and a live task takes no callbacks."""

import json

import pytest

from tasks.builder.forms import TaskRequestForm, catalog_for, form_data_from_fields
from tasks.upstream.providers import provider_rules
from tests.factories import make_catalog

VALID = {
    "gemini": {"user_prompt": "What is the capital of France?", "model_name": "gemini-2.5-flash"},
    "perplexity": {"user_prompt": "What is the capital of France?", "model_name": "sonar"},
}
USER, AI = {"role": "user", "message": "hi"}, {"role": "ai", "message": "hello"}

# (provider, what the body changes, the field the stand-in names); Perplexity's are sent live.
VIOLATIONS = [
    ("gemini", {"user_prompt": ""}, "user_prompt"),
    ("gemini", {"model_name": "gemini-9"}, "model_name"),
    ("gemini", {"max_output_tokens": 0}, "max_output_tokens"),
    ("gemini", {"max_output_tokens": 4097}, "max_output_tokens"),
    ("gemini", {"temperature": 2.1}, "temperature"),
    ("gemini", {"top_p": 1.1}, "top_p"),
    ("gemini", {"temperature": 1.0, "top_p": 0.5}, "top_p"),
    ("gemini", {"use_reasoning": True, "max_output_tokens": 1023}, "max_output_tokens"),
    ("gemini", {"model_name": "gemini-2.0-flash-lite", "web_search": True, "mode": "live"}, "web_search"),
    ("gemini", {"force_web_search": True}, "force_web_search"),
    ("gemini", {"web_search": True, "web_search_country_iso_code": "FR"}, "web_search_country_iso_code"),
    ("gemini", {"web_search": True, "web_search_city": "Paris"}, "web_search_city"),
    ("gemini", {"message_chain": [USER] * 11}, "message_chain"),
    ("gemini", {"system_message": "x" * 501}, "system_message"),
    ("gemini", {"tag": "x" * 256}, "tag"),
    ("perplexity", {"temperature": 1.95}, "temperature"),
    ("perplexity", {"top_p": 1.5}, "top_p"),
    ("perplexity", {"temperature": 0.5, "top_p": 0.5}, "top_p"),
    ("perplexity", {"max_output_tokens": 0}, "max_output_tokens"),
    ("perplexity", {"max_output_tokens": 4097}, "max_output_tokens"),
    ("perplexity", {"model_name": "r1-1776", "web_search_country_iso_code": "FR"},
     "web_search_country_iso_code"),
    ("perplexity", {"web_search_country_iso_code": "FRA"}, "web_search_country_iso_code"),
    ("perplexity", {"message_chain": [AI, USER]}, "message_chain"),
    ("perplexity", {"message_chain": [USER, USER]}, "message_chain"),
    ("perplexity", {"web_search": True}, "web_search"),
    ("perplexity", {"pingback_url": "https://example.com/ping"}, "pingback_url"),
    ("perplexity", {"model_name": "gpt-4.1"}, "model_name"),
]  # fmt: skip

VALID_FULL = [
    ("gemini", {"temperature": 2.0, "web_search": True, "max_output_tokens": 1, "tag": "g"}),
    ("gemini", {"top_p": 0.1, "message_chain": [AI, AI]}),  # Gemini does not ask for alternation
    ("gemini", {"model_name": "gemini-2.5-pro", "mode": "live", "max_output_tokens": 1024, "temperature": 1}),
    ("gemini", {"use_reasoning": True, "max_output_tokens": 1024, "temperature": 0.5}),
    ("perplexity", {"temperature": 1.9, "web_search_country_iso_code": "FR", "message_chain": [USER, AI]}),
    ("perplexity", {"model_name": "r1-1776", "max_output_tokens": 1, "top_p": 1}),
    ("perplexity", {"model_name": "sonar-reasoning", "temperature": 0.2, "system_message": "Be brief."}),
]  # fmt: skip


def bind(provider: str, body: dict, credential) -> TaskRequestForm:
    rules = provider_rules(provider)
    data = form_data_from_fields(rules, body, credential=credential)
    for name in set(body) - set(rules.field_names):  # a field the provider does not take: posted anyway
        data[name] = "on" if body[name] is True else str(body[name])
    return TaskRequestForm(data, rules=rules, catalog=catalog_for(provider))


def stand_in_answer(client, provider: str, body: dict, mode: str) -> dict:
    response = client.post(
        f"/sandbox/apis/v1/dataforseo/ai_optimization/{provider}/llm_responses/{mode}",
        data=json.dumps([body]),
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer sandbox-key",
    )
    assert response.status_code == 200
    return response.json()["tasks"][0]


def mode_of(provider: str, body: dict) -> str:
    return body.get("mode") or provider_rules(provider).default_mode


@pytest.fixture(autouse=True)
def catalog(db):
    make_catalog()


@pytest.mark.parametrize(("provider", "change", "field"), VIOLATIONS)
def test_a_body_breaking_a_rule_is_refused_by_the_form_and_the_stand_in(
    client, credential, provider, change, field
):
    body = {**VALID[provider], **change}
    mode = mode_of(provider, body)
    sent = {name: value for name, value in body.items() if name != "mode"}

    form = bind(provider, body, credential)
    answer = stand_in_answer(client, provider, sent, mode)

    assert not form.is_valid() or field not in provider_rules(provider).field_names
    if field in provider_rules(provider).field_names:
        assert field in form.errors, form.errors
    else:  # not a field of this provider: the form has no such input and never sends it
        assert field not in form.body
    assert answer["status_code"] == 40501
    assert f"'{field}'" in answer["status_message"]


@pytest.mark.parametrize(("provider", "change"), VALID_FULL)
def test_a_valid_body_passes_the_form_and_the_stand_in(client, credential, provider, change):
    form = bind(provider, {**VALID[provider], **change}, credential)

    assert form.is_valid(), form.errors
    answer = stand_in_answer(client, provider, form.body, form.mode)
    assert answer["status_code"] == (20000 if form.mode == "live" else 20100), answer["status_message"]


def test_perplexity_answers_live_only_in_the_form_and_at_the_stand_in(client, credential):
    form = bind("perplexity", {**VALID["perplexity"], "mode": "task_post"}, credential)
    response = client.post(
        "/sandbox/apis/v1/dataforseo/ai_optimization/perplexity/llm_responses/task_post",
        data=json.dumps([VALID["perplexity"]]),
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer sandbox-key",
    )

    assert not form.is_valid()
    assert "mode" in form.errors
    assert response.status_code == 404
    assert bind("perplexity", VALID["perplexity"], credential).mode == "live"


def test_a_gemini_model_that_cannot_be_queued_is_sent_live(client, credential):
    body = {**VALID["gemini"], "model_name": "gemini-2.5-pro"}

    queued = bind("gemini", body, credential)
    answer = stand_in_answer(client, "gemini", body, "task_post")

    assert not queued.is_valid()
    assert "cannot be queued; send it Live" in str(queued.errors["model_name"])
    assert answer["status_code"] == 40501
    assert bind("gemini", {**body, "mode": "live"}, credential).is_valid()


def test_a_live_task_takes_no_callbacks(client, credential):
    body = {**VALID["gemini"], "pingback_url": "https://example.com/ping"}

    form = bind("gemini", {**body, "mode": "live"}, credential)
    answer = stand_in_answer(client, "gemini", body, "live")

    assert not form.is_valid()
    assert "callbacks are for queued tasks" in str(form.errors["pingback_url"])
    assert answer["status_code"] == 40501


def test_gemini_pro_models_always_reason_so_the_token_minimum_applies(client, credential):
    body = {**VALID["gemini"], "model_name": "gemini-2.5-pro", "max_output_tokens": 1000}

    form = bind("gemini", {**body, "mode": "live"}, credential)
    answer = stand_in_answer(client, "gemini", body, "live")

    assert not form.is_valid()
    assert "Pro models always reason" in str(form.errors["max_output_tokens"])
    assert answer["status_code"] == 40501
    assert "'max_output_tokens'" in answer["status_message"]
