"""The provider rules tables (api-reference §2): one entry per documented field and rule."""

import pytest

from tasks.upstream import providers
from tasks.upstream.providers import CHAT_GPT, CLAUDE, ModelFlags, cross_field_violations

GPT41 = ModelFlags("gpt-4.1", reasoning=False, web_search_supported=True)
O3_MINI = ModelFlags("o3-mini", reasoning=True, web_search_supported=True)
GPT4O_MINI = ModelFlags("gpt-4o-mini", reasoning=False, web_search_supported=False)
O1_PRO = ModelFlags("o1-pro", reasoning=True, task_post_supported=False)
SONNET = ModelFlags("claude-sonnet-4-5", reasoning=True, web_search_supported=True)
HAIKU = ModelFlags("claude-3-5-haiku", reasoning=False, web_search_supported=True)


def fields_of(violations):
    return [set(v.fields) for v in violations]


def test_the_chat_gpt_and_claude_tables_have_every_documented_field():
    common = {
        "user_prompt", "model_name", "max_output_tokens", "temperature", "top_p", "system_message",
        "message_chain", "tag", "postback_url", "pingback_url", "web_search", "force_web_search",
        "web_search_country_iso_code", "web_search_city",
    }  # fmt: skip
    assert set(CHAT_GPT.field_names) == common | {"mode"}
    assert set(CLAUDE.field_names) == common | {"mode", "use_reasoning"}


def test_ranges_and_defaults_per_provider():
    assert (CHAT_GPT.field("temperature").min_value, CHAT_GPT.field("temperature").max_value) == (0, 2)
    assert (CLAUDE.field("temperature").min_value, CLAUDE.field("temperature").max_value) == (0, 1)
    assert CHAT_GPT.field("temperature").default == 0.94
    assert CLAUDE.field("temperature").default == 0.7
    assert CHAT_GPT.field("max_output_tokens").max_value == 4096
    assert len(CLAUDE.field("web_search_country_iso_code").choices) == 36


def test_unknown_provider_falls_back_to_the_default():
    assert providers.provider_rules("bard").slug == "chat_gpt"
    assert providers.provider_rules(None).slug == "chat_gpt"
    assert providers.provider_rules("claude") is CLAUDE


def test_temperature_and_top_p_are_exclusive():
    assert {"temperature", "top_p"} in fields_of(
        cross_field_violations(CHAT_GPT, {"temperature": 0.5, "top_p": 0.5}, GPT41)
    )


@pytest.mark.parametrize("name", ["temperature", "top_p"])
def test_chat_gpt_reasoning_models_take_no_sampling(name):
    found = cross_field_violations(CHAT_GPT, {name: 0.5}, O3_MINI)
    assert {name, "model_name"} in fields_of(found)


def test_chat_gpt_reasoning_models_need_1024_tokens():
    found = cross_field_violations(CHAT_GPT, {"max_output_tokens": 1000}, O3_MINI)
    assert found[0].message == "Must be at least 1024 for a reasoning model."
    assert not cross_field_violations(CHAT_GPT, {"max_output_tokens": 1024}, O3_MINI)


def test_chat_gpt_ordinary_models_need_16_tokens():
    assert fields_of(cross_field_violations(CHAT_GPT, {"max_output_tokens": 15}, GPT41)) == [
        {"max_output_tokens"}
    ]


def test_claude_use_reasoning_needs_1025_tokens_and_no_sampling():
    found = cross_field_violations(
        CLAUDE, {"use_reasoning": True, "max_output_tokens": 1024, "temperature": 0.2}, SONNET
    )
    assert {"max_output_tokens", "use_reasoning"} in fields_of(found)
    assert {"temperature", "use_reasoning"} in fields_of(found)


def test_claude_takes_one_token_without_reasoning():
    assert not cross_field_violations(CLAUDE, {"max_output_tokens": 1}, HAIKU)


def test_use_reasoning_needs_a_reasoning_model():
    assert {"use_reasoning", "model_name"} in fields_of(
        cross_field_violations(CLAUDE, {"use_reasoning": True}, HAIKU)
    )


def test_force_web_search_is_not_allowed_for_reasoning_runs():
    values = {"web_search": True, "force_web_search": True}
    assert {"force_web_search", "model_name"} in fields_of(cross_field_violations(CHAT_GPT, values, O3_MINI))


def test_web_search_needs_a_model_that_supports_it():
    assert {"web_search", "model_name"} in fields_of(
        cross_field_violations(CHAT_GPT, {"web_search": True}, GPT4O_MINI)
    )


@pytest.mark.parametrize(
    ("values", "concerned"),
    [
        ({"force_web_search": True}, {"force_web_search", "web_search"}),
        ({"web_search_country_iso_code": "FR"}, {"web_search_country_iso_code", "web_search"}),
        ({"web_search_city": "Paris"}, {"web_search_city", "web_search"}),
        (
            {"web_search": True, "web_search_city": "Paris"},
            {"web_search_city", "web_search_country_iso_code"},
        ),
    ],
)
def test_search_options_need_what_they_depend_on(values, concerned):
    assert concerned in fields_of(cross_field_violations(CHAT_GPT, values, GPT41))


def test_o_series_models_take_no_location():
    values = {"web_search": True, "web_search_country_iso_code": "FR"}
    assert {"web_search_country_iso_code", "model_name"} in fields_of(
        cross_field_violations(CHAT_GPT, values, O3_MINI)
    )
    dated = ModelFlags("o3-mini-2025-01-31", reasoning=True, web_search_supported=True)
    assert cross_field_violations(CHAT_GPT, values, dated)


def test_models_that_cannot_be_queued_are_refused_for_task_post_only():
    assert fields_of(cross_field_violations(CHAT_GPT, {}, O1_PRO)) == [{"model_name", "mode"}]
    assert not cross_field_violations(CHAT_GPT, {}, O1_PRO, mode="live")


def test_queued_charge_follows_the_price_multiplier():
    from decimal import Decimal

    assert providers.queued_charge_per_task() == Decimal("0.0102")
    assert providers.queued_charge_per_task(price_multiplier=Decimal("2")) == Decimal("0.0204")


def test_the_gemini_and_perplexity_tables_have_their_documented_fields():
    from tasks.upstream.providers import GEMINI, PERPLEXITY

    assert set(GEMINI.field_names) == {
        "user_prompt", "model_name", "mode", "system_message", "message_chain", "tag", "max_output_tokens",
        "temperature", "top_p", "web_search", "use_reasoning", "pingback_url", "postback_url",
    }  # fmt: skip
    assert set(PERPLEXITY.field_names) == {
        "user_prompt", "model_name", "mode", "system_message", "message_chain", "tag", "max_output_tokens",
        "temperature", "top_p", "web_search_country_iso_code",
    }  # fmt: skip
    assert (GEMINI.field("temperature").max_value, GEMINI.field("temperature").default) == (2, 1.3)
    assert (PERPLEXITY.field("temperature").max_value, PERPLEXITY.field("temperature").default) == (1.9, 0.77)
    assert PERPLEXITY.default_mode == "live" and GEMINI.default_mode == "task_post"
    assert "models list" in GEMINI.field("model_name").help_text  # the unconfirmed rule, said so


def test_the_live_charge_is_the_base_price_plus_the_reserved_model_cost():
    from decimal import Decimal

    assert providers.charge_per_task(mode="live") == Decimal("0.0106")
    assert providers.charge_per_task(mode="live", price_multiplier=Decimal("2")) == Decimal("0.0212")
    assert providers.charge_per_task(mode="task_post") == Decimal("0.0102")
