"""Reading a finished upstream task (api-reference §3) into the fields the product stores.

Reading never raises, whatever the result holds. A field that is missing is left empty; a field that is
there but cannot be read, or does not fit its database column, is left empty too and named in
`ParsedResult.problems`, so the task is still recorded (and the reason shown in its history). What is
stored is also made storable on SQLite and PostgreSQL: no NUL character, no lone surrogate, no NaN or
Infinity, integers and amounts within their columns' ranges, JSON nested at most MAX_DEPTH levels.
"""

import math
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

COUNT_MAX = 2**31 - 1  # PositiveIntegerField: 0 … 2,147,483,647 on every database
MONEY_MAX = Decimal("10000")  # an amount for one task at or above this is not believable (column: 12,6)
INDEX_MAX = 10**9  # a citation's start/end index into an answer
MAX_DEPTH = 64  # a finished task is about 8 levels deep; deeper JSON is cut (and said so) when stored
TOO_DEEP = "[nested too deeply]"


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
    problems: list[str] = field(default_factory=list)  # what could not be read, for the task's history

    @property
    def money_unreadable(self) -> bool:
        return any(problem.startswith("money_spent") for problem in self.problems)


def storable_text(value: str) -> str:
    """`value` without what a database refuses: NUL (PostgreSQL) and lone surrogates (UTF-8 itself)."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def storable_json(value, *, depth: int = 0):
    """A copy of JSON-like `value` that a JSONField stores on SQLite and PostgreSQL: texts (keys too) made
    storable, NaN and ±Infinity and integers beyond 64 bits written as text, anything else that is not JSON
    as its type name, and what is nested deeper than MAX_DEPTH replaced by TOO_DEEP."""
    if value is None or isinstance(value, bool | str):
        return storable_text(value) if isinstance(value, str) else value
    if isinstance(value, int):
        return value if value.bit_length() <= 63 else ("-" if value < 0 else "") + "[a very large integer]"
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth >= MAX_DEPTH and isinstance(value, dict | list | tuple):
        return TOO_DEEP
    if isinstance(value, dict):
        return {storable_text(str(key)): storable_json(item, depth=depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(item, depth=depth + 1) for item in value]
    return f"[{type(value).__name__}]"


def json_depth_exceeds(value, limit: int = MAX_DEPTH) -> bool:
    """Whether JSON-like `value` is nested more than `limit` levels deep (without recursing)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def _text(value, name: str, problems: list[str], *, limit: int | None = None) -> str:
    """A scalar as storable text; "" (and a problem) for an object or a list."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        problems.append(f"{name} is not text")
        return ""
    text = storable_text(value if isinstance(value, str) else _scalar_text(value))
    return text[:limit] if limit is not None else text


def _scalar_text(value) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return "[a very large integer]"
    return str(value)


def _count(value, name: str, problems: list[str]) -> int | None:
    """A token count: a whole number from 0 to COUNT_MAX (an integral float or a string of digits too)."""
    if value is None:
        return None
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value) < 20:
        number = int(value.strip())
    if number is None or not 0 <= number <= COUNT_MAX:
        problems.append(f"{name} is not a count")
        return None
    return number


def _money(value, name: str, problems: list[str]) -> Decimal | None:
    """An amount in USD: a finite number from 0 up to MONEY_MAX (a string of one too)."""
    if value is None:
        return None
    text = None
    if isinstance(value, str) and len(value) < 100:
        text = value.strip()
    elif isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)):
        text = str(value) if not isinstance(value, int) or value.bit_length() <= 64 else None
    try:
        amount = Decimal(text) if text is not None else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or not 0 <= amount < MONEY_MAX:
        problems.append(f"{name} is not an amount")
        return None
    return amount


def _index(value) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INDEX_MAX:
        return value
    return None


def _list(value, name: str, problems: list[str]) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(f"{name} is not a list")
        return []
    return value


def domain_of(value: str) -> str:
    """`https://www.Acme.com/x` -> `acme.com`; a bare domain as it is, lowercased, without a trailing dot;
    "" for what has no host, including what urlsplit cannot read (`[]`, `http://[::1`). A citation's
    domain and a brand's own domains both go through here, so they compare equal."""
    value = (value or "").strip().lower()
    if not value:
        return ""
    try:
        host = urlsplit(value if "//" in value else f"//{value}").hostname or ""
    except ValueError:  # a bracketed host that is not an IPv6 address, or an unclosed bracket
        return ""
    return host.removeprefix("www.").rstrip(".")


def parse_result(result) -> ParsedResult:
    """Extract answer, reasoning, citations and usage from `result`; tolerant of missing keys, and never
    raises on fields of the wrong type or out of range (see the module docstring)."""
    parsed = ParsedResult()
    problems = parsed.problems
    if result is None:
        return parsed
    if not isinstance(result, list):
        problems.append("result is not a list")
        return parsed
    if not result:
        return parsed
    first = result[0]
    if not isinstance(first, dict):
        problems.append("result[0] is not an object")
        return parsed
    parsed.resolved_model_name = _text(first.get("model_name"), "model_name", problems, limit=100)
    parsed.input_tokens = _count(first.get("input_tokens"), "input_tokens", problems)
    parsed.output_tokens = _count(first.get("output_tokens"), "output_tokens", problems)
    parsed.reasoning_tokens = _count(first.get("reasoning_tokens"), "reasoning_tokens", problems)
    web_search = first.get("web_search")
    if web_search is not None and not isinstance(web_search, bool):
        problems.append("web_search is not true or false")
    parsed.web_search_used = web_search if isinstance(web_search, bool) else None
    parsed.money_spent = _money(first.get("money_spent"), "money_spent", problems)
    queries = _list(first.get("fan_out_queries"), "fan_out_queries", problems)
    parsed.fan_out_queries = [
        text for query in queries if query and (text := _text(query, "a fan-out query", problems))
    ]

    answers: list[str] = []
    reasoning: list[str] = []
    for item in _list(first.get("items"), "items", problems):
        if not isinstance(item, dict):
            continue
        for section in _list(item.get("sections"), "sections", problems):
            if not isinstance(section, dict) or not section.get("text"):
                continue
            text = _text(section["text"], "a section's text", problems)
            if item.get("type") == "message":
                # Annotation indexes count within their section; shift them into the joined answer.
                offset = sum(len(t) + 2 for t in answers)
                annotations = _list(section.get("annotations"), "annotations", problems)
                parsed.citations.extend(_citations(annotations, offset, problems))
                answers.append(text)
            elif item.get("type") == "reasoning":
                reasoning.append(text)
    parsed.answer_text = "\n\n".join(answers)
    parsed.reasoning_text = "\n\n".join(reasoning)
    return parsed


def _citations(annotations: list, offset: int, problems: list[str]) -> list[dict]:
    citations = []
    for annotation in annotations:
        if not isinstance(annotation, dict) or not annotation.get("url"):
            continue
        url = _text(annotation["url"], "a citation's url", problems)
        if not url:
            continue
        start = _index(annotation.get("start_index"))
        end = _index(annotation.get("end_index"))
        # Gemini's url is a Vertex AI redirect; its direct_url is the cited page (api-reference §3).
        direct = _text(annotation.get("direct_url"), "a citation's direct_url", problems)
        citation = {
            "title": _text(annotation.get("title"), "a citation's title", problems) or url,
            "url": url,
            "domain": domain_of(direct or url),
            "start_index": start + offset if start is not None else None,
            "end_index": end + offset if end is not None else None,
            "text": _text(annotation.get("text"), "a citation's text", problems),
        }
        if direct:
            citation["direct_url"] = direct
        citations.append(citation)
    return citations
