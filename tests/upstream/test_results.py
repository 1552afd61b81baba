import json
from decimal import Decimal

import pytest

from tasks.upstream.results import parse_result, storable_json

FINISHED = [
    {
        "model_name": "gpt-4.1-mini-2025-04-14",
        "input_tokens": 374,
        "output_tokens": 594,
        "reasoning_tokens": 0,
        "web_search": True,
        "money_spent": 0.0286,
        "datetime": "2025-07-17 11:58:28 +00:00",
        "items": [
            {"type": "reasoning", "sections": [{"type": "summary_text", "text": "Thinking about parks."}]},
            {
                "type": "message",
                "sections": [
                    {
                        "type": "text",
                        "text": "Parks in France are big.",
                        "annotations": [
                            {"title": "Parks", "url": "https://www.example.org/parks?utm_source=openai"},
                        ],
                    },
                    {
                        "type": "text",
                        "text": "Disneyland leads.",
                        "annotations": [
                            {
                                "title": "Disneyland Paris",
                                "url": "https://en.wikipedia.org/wiki/Disneyland_Paris",
                                "start_index": 0,
                                "end_index": 10,
                                "text": "Disneyland",
                            }
                        ],
                    },
                ],
            },
        ],
        "fan_out_queries": ["France amusement park market size 2024"],
    }
]


def test_a_finished_result_gives_answer_usage_citations_and_fan_out():
    parsed = parse_result(FINISHED)
    assert parsed.resolved_model_name == "gpt-4.1-mini-2025-04-14"
    assert (parsed.input_tokens, parsed.output_tokens, parsed.reasoning_tokens) == (374, 594, 0)
    assert parsed.money_spent == Decimal("0.0286")
    assert parsed.web_search_used is True
    assert parsed.answer_text == "Parks in France are big.\n\nDisneyland leads."
    assert parsed.reasoning_text == "Thinking about parks."
    assert parsed.fan_out_queries == ["France amusement park market size 2024"]
    assert [c["domain"] for c in parsed.citations] == ["example.org", "en.wikipedia.org"]


def test_citation_indexes_point_into_the_joined_answer():
    parsed = parse_result(FINISHED)
    cited = parsed.citations[1]
    assert parsed.answer_text[cited["start_index"] : cited["end_index"]] == "Disneyland"


def test_missing_or_odd_fields_do_not_break_parsing():
    parsed = parse_result([{"items": [None, {"type": "message", "sections": ["x", {"text": None}]}]}])
    assert parsed.answer_text == ""
    assert parse_result(None).citations == []
    assert parse_result([{"input_tokens": "many", "money_spent": "n/a"}]).input_tokens is None


@pytest.mark.parametrize(
    ("first", "problem"),
    [
        ({"fan_out_queries": 7}, "fan_out_queries is not a list"),
        ({"items": 5}, "items is not a list"),
        ({"items": [{"type": "message", "sections": {"text": "x"}}]}, "sections is not a list"),
        ({"input_tokens": 10**12}, "input_tokens is not a count"),
        ({"output_tokens": -1}, "output_tokens is not a count"),
        ({"money_spent": "NaN"}, "money_spent is not an amount"),
        ({"money_spent": float("inf")}, "money_spent is not an amount"),
        ({"money_spent": "1e30"}, "money_spent is not an amount"),
        ({"money_spent": True}, "money_spent is not an amount"),
        ({"model_name": ["gpt"]}, "model_name is not text"),
        ({"web_search": "yes"}, "web_search is not true or false"),
    ],
)
def test_a_field_that_cannot_be_read_or_stored_is_left_empty_and_named(first, problem):
    parsed = parse_result([{**FINISHED[0], **first}])
    assert parsed.problems == [problem]
    if not problem.startswith(("items", "sections")):  # the rest of the result is still read
        assert parsed.answer_text == "Parks in France are big.\n\nDisneyland leads."


def test_text_is_made_storable_and_odd_urls_do_not_break_citations():
    parsed = parse_result(
        [
            {
                "model_name": "gpt\x00-\ud800",
                "items": [
                    {
                        "type": "message",
                        "sections": [
                            {"text": "a\x00b", "annotations": [{"url": "http://[::1", "start_index": -4}]}
                        ],
                    }
                ],
            }
        ]
    )
    assert parsed.problems == []
    assert parsed.resolved_model_name == "gpt\ufffd-?"
    assert parsed.answer_text == "a\ufffdb"
    assert parsed.citations[0]["domain"] == "" and parsed.citations[0]["start_index"] is None


def test_storable_json_cuts_what_is_nested_too_deeply_and_writes_nan_as_text():
    deep = []
    for _ in range(100):
        deep = [deep]
    stored = storable_json({"a": deep, "b": float("nan"), "c\x00": 2**80})
    json.dumps(stored, allow_nan=False)  # plain JSON now
    assert stored["b"] == "nan" and stored["c\ufffd"] == "[a very large integer]"
    assert "[nested too deeply]" in json.dumps(stored)


def test_a_citation_domain_is_read_as_a_brands_own_domain_is_so_the_two_compare_equal():
    from tasks.visibility.extraction import parse_domains

    def section(url):
        return {"text": "x", "annotations": [{"url": url, "title": "t"}]}

    urls = ["https://WWW.Acme.com./a", "www.acme.com/pricing", "HTTPS://shop.acme.com:8443/"]
    result = [{"items": [{"type": "message", "sections": [section(url) for url in urls]}]}]
    domains = [citation["domain"] for citation in parse_result(result).citations]
    assert domains == ["acme.com", "acme.com", "shop.acme.com"]
    assert parse_domains("https://www.acme.com/") == ("acme.com",)
