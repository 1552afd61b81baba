"""Reading a finished upstream task (api-reference §3) into the fields the product stores."""

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit


@dataclass
class ParsedResult:
    resolved_model_name: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    web_search_used: bool | None = None
    money_spent: Decimal | None = None
    answer_text: str = ""
    reasoning_text: str = ""
    citations: list[dict] = field(default_factory=list)
    fan_out_queries: list[str] = field(default_factory=list)


def _int_or_none(value) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _decimal_or_none(value) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except (InvalidOperation, ValueError):
        return None


def citation_domain(url: str) -> str:
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.")


def parse_result(result: list | None) -> ParsedResult:
    """Extract answer, reasoning, citations and usage from `result`; tolerant of missing keys."""
    parsed = ParsedResult()
    if not result or not isinstance(result[0], dict):
        return parsed
    first = result[0]
    parsed.resolved_model_name = str(first.get("model_name") or "")[:100]
    parsed.input_tokens = _int_or_none(first.get("input_tokens"))
    parsed.output_tokens = _int_or_none(first.get("output_tokens"))
    parsed.reasoning_tokens = _int_or_none(first.get("reasoning_tokens"))
    web_search = first.get("web_search")
    parsed.web_search_used = web_search if isinstance(web_search, bool) else None
    parsed.money_spent = _decimal_or_none(first.get("money_spent"))
    parsed.fan_out_queries = [str(q) for q in first.get("fan_out_queries") or [] if q]

    answers: list[str] = []
    reasoning: list[str] = []
    for item in first.get("items") or []:
        if not isinstance(item, dict):
            continue
        for section in item.get("sections") or []:
            if not isinstance(section, dict) or not section.get("text"):
                continue
            text = str(section["text"])
            if item.get("type") == "message":
                # Annotation indexes count within their section; shift them into the joined answer.
                offset = sum(len(t) + 2 for t in answers)
                parsed.citations.extend(_citations(section.get("annotations"), offset))
                answers.append(text)
            elif item.get("type") == "reasoning":
                reasoning.append(text)
    parsed.answer_text = "\n\n".join(answers)
    parsed.reasoning_text = "\n\n".join(reasoning)
    return parsed


def _citations(annotations, offset: int) -> list[dict]:
    citations = []
    for annotation in annotations or []:
        if not isinstance(annotation, dict) or not annotation.get("url"):
            continue
        url = str(annotation["url"])
        start = _int_or_none(annotation.get("start_index"))
        end = _int_or_none(annotation.get("end_index"))
        citations.append(
            {
                "title": str(annotation.get("title") or url),
                "url": url,
                "domain": citation_domain(url),
                "start_index": start + offset if start is not None else None,
                "end_index": end + offset if end is not None else None,
                "text": str(annotation.get("text") or ""),
            }
        )
    return citations
