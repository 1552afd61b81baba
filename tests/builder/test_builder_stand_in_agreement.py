"""The builder's form and the stand-in upstream agree on every rule of api-reference §2: a body that
breaks a rule is refused by the form and answered 40501 by the stand-in; a valid body passes both."""

import json

import pytest

from tasks.builder.forms import TaskRequestForm, catalog_for, form_data_from_fields
from tasks.upstream.providers import provider_rules
from tests.factories import make_catalog

VALID = {
    "chat_gpt": {"user_prompt": "What is the capital of France?", "model_name": "gpt-4.1"},
    "claude": {"user_prompt": "What is the capital of France?", "model_name": "claude-3-5-haiku"},
}
TURN = {"role": "user", "message": "hi"}

# (provider, what the body changes, the field the stand-in names)
VIOLATIONS = [
    ("chat_gpt", {"user_prompt": ""}, "user_prompt"),
    ("chat_gpt", {"user_prompt": "x" * 501}, "user_prompt"),
    ("chat_gpt", {"model_name": "gpt-9"}, "model_name"),
    ("chat_gpt", {"model_name": "o1-pro"}, "model_name"),
    ("chat_gpt", {"max_output_tokens": 4097}, "max_output_tokens"),
    ("chat_gpt", {"max_output_tokens": 15}, "max_output_tokens"),
    ("chat_gpt", {"model_name": "o3-mini", "max_output_tokens": 1023}, "max_output_tokens"),
    ("chat_gpt", {"temperature": 2.5}, "temperature"),
    ("chat_gpt", {"top_p": 1.5}, "top_p"),
    ("chat_gpt", {"temperature": 0.5, "top_p": 0.5}, "top_p"),
    ("chat_gpt", {"model_name": "o3-mini", "temperature": 0.5}, "temperature"),
    ("chat_gpt", {"model_name": "o3-mini", "top_p": 0.5}, "top_p"),
    ("chat_gpt", {"model_name": "o3-mini", "web_search": True, "force_web_search": True}, "force_web_search"),
    ("chat_gpt", {"system_message": "x" * 501}, "system_message"),
    ("chat_gpt", {"message_chain": [TURN] * 11}, "message_chain"),
    ("chat_gpt", {"message_chain": [{"role": "ai", "message": "x" * 501}]}, "message_chain"),
    ("chat_gpt", {"tag": "x" * 256}, "tag"),
    ("chat_gpt", {"model_name": "gpt-4o-mini", "web_search": True}, "web_search"),
    ("chat_gpt", {"force_web_search": True}, "force_web_search"),
    ("chat_gpt", {"web_search_country_iso_code": "FR"}, "web_search_country_iso_code"),
    ("chat_gpt", {"web_search": True, "web_search_city": "Paris"}, "web_search_city"),
    (
        "chat_gpt",
        {"model_name": "o3-mini", "web_search": True, "web_search_country_iso_code": "FR"},
        "web_search_country_iso_code",
    ),
    ("chat_gpt", {"web_search": True, "web_search_country_iso_code": "FRA"}, "web_search_country_iso_code"),
    ("chat_gpt", {"pingback_url": "not a url"}, "pingback_url"),
    ("chat_gpt", {"pingback_url": "ftp://example.com/ping"}, "pingback_url"),
    ("claude", {"postback_url": "ftps://example.com/results"}, "postback_url"),
    ("claude", {"temperature": 1.5}, "temperature"),
    ("claude", {"max_output_tokens": 0}, "max_output_tokens"),
    ("claude", {"model_name": "claude-opus-4-1"}, "model_name"),
    ("claude", {"use_reasoning": True}, "use_reasoning"),
    ("claude", {"model_name": "claude-sonnet-4-5", "use_reasoning": True, "max_output_tokens": 1024},
     "max_output_tokens"),
    ("claude", {"model_name": "claude-sonnet-4-5", "use_reasoning": True, "temperature": 0.5}, "temperature"),
    ("claude", {"model_name": "claude-sonnet-4-5", "use_reasoning": True, "top_p": 0.5}, "top_p"),
    (
        "claude",
        {"model_name": "claude-sonnet-4-5", "use_reasoning": True, "web_search": True,
         "force_web_search": True},
        "force_web_search",
    ),
    ("claude", {"web_search": True, "web_search_country_iso_code": "XX"}, "web_search_country_iso_code"),
    ("claude", {"top_p": 0.5, "temperature": 0.5}, "top_p"),
    ("chat_gpt", {"temperature": 0, "top_p": 0}, "top_p"),
]  # fmt: skip

VALID_FULL = [
    (
        "chat_gpt",
        {
            "model_name": "gpt-4.1-mini", "system_message": "Be brief.", "max_output_tokens": 512,
            "temperature": 0.3, "web_search": True, "force_web_search": True,
            "web_search_country_iso_code": "FR", "web_search_city": "Paris", "tag": "team-a",
            "message_chain": [{"role": "user", "message": "Hello"}, {"role": "ai", "message": "Hi!"}],
            "pingback_url": "https://example.com/ping?id=$id",
        },
    ),
    ("chat_gpt", {"model_name": "o3-mini", "max_output_tokens": 1024, "web_search": True}),
    (
        "claude",
        {
            "model_name": "claude-sonnet-4-5", "use_reasoning": True, "max_output_tokens": 1025,
            "web_search": True, "web_search_country_iso_code": "DE", "web_search_city": "Berlin",
        },
    ),
    ("claude", {"max_output_tokens": 1, "top_p": 0.9, "web_search": True, "force_web_search": True}),
    ("chat_gpt", {"temperature": 0, "max_output_tokens": 16}),
]  # fmt: skip


def bind(provider: str, body: dict, credential) -> TaskRequestForm:
    rules = provider_rules(provider)
    data = form_data_from_fields(rules, body, credential=credential)
    return TaskRequestForm(data, rules=rules, catalog=catalog_for(provider))


def stand_in_answer(client, provider: str, body: dict) -> dict:
    response = client.post(
        f"/sandbox/apis/v1/dataforseo/ai_optimization/{provider}/llm_responses/task_post",
        data=json.dumps([body]),
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer sandbox-key",
    )
    assert response.status_code == 200
    return response.json()["tasks"][0]


@pytest.fixture(autouse=True)
def catalog(db):
    make_catalog()


@pytest.mark.parametrize(("provider", "change", "field"), VIOLATIONS)
def test_a_body_breaking_a_rule_is_refused_by_the_form_and_the_stand_in(
    client, credential, provider, change, field
):
    body = {**VALID[provider], **change}

    form = bind(provider, body, credential)
    answer = stand_in_answer(client, provider, body)

    assert not form.is_valid()
    assert field in form.errors, form.errors
    assert answer["status_code"] == 40501
    assert f"'{field}'" in answer["status_message"]


@pytest.mark.parametrize(("provider", "change"), VALID_FULL)
def test_a_valid_body_passes_the_form_and_the_stand_in(client, credential, provider, change):
    form = bind(provider, {**VALID[provider], **change}, credential)

    assert form.is_valid(), form.errors
    answer = stand_in_answer(client, provider, form.body)
    assert answer["status_code"] == 20100, answer["status_message"]
