from decimal import Decimal

from tasks.results import parse_result

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
