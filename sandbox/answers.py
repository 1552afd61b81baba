"""Made-up but plausible answers, deterministic in the request.

`compose_result` builds result[0] of a finished task (api-reference §3). The same prompt, system message,
message chain and model always give the same text, so tests can compare answers; web search adds citations,
annotations and fan-out queries; reasoning runs add a reasoning item. Token counts follow the text (about four
characters a token) and `money_spent` follows the tokens and the model's price in the catalog.
"""

import hashlib
import json
import math
import random
import re
from datetime import datetime
from decimal import Decimal

from sandbox.catalog import WEB_SEARCH_FEE, CatalogModel

CHARS_PER_TOKEN = 4
DEFAULT_MAX_OUTPUT_TOKENS = 2048
TOKENS_PER_MESSAGE = 7  # role markers and separators each message costs on top of its text
WEB_SEARCH_INPUT_TOKENS = 320  # the search results the model reads

_STOPWORDS_TEXT = """
    about above after again against also among an and any are as at be because been before being below
    between both but by can could did does doing down during each few for from further had has have having he
    her here hers him his how i if in into is it its itself just me more most my no nor not now of off on once
    only or other our out over own please same she should so some such than that the their them then there
    these they this those through to too under until up very was we were what when where which while who whom
    why will with would you your yours give tell explain provide describe list information write make know
    relevant current currently today best good better top"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())

OPENINGS = (
    "{Topic} is a subject where the details matter more than the headlines.",
    "In short, {topic} depends on a handful of factors that are worth looking at one by one.",
    "There is no single answer about {topic}, but a clear picture emerges once the main drivers are "
    "separated.",
    "{Topic} has changed noticeably over the last few years, and the current situation is worth a "
    "closer look.",
)
CONTEXT_SENTENCES = (
    "Most of what matters comes down to **{a}** and how it interacts with {b}.",
    "The most useful starting point is **{a}**, because it shapes everything else, including {b}.",
    "Experts usually frame the question around **{a}**, with {b} as the second consideration.",
    "Recent data points to **{a}** as the main factor, while {b} explains much of the variation.",
)
POINT_PHRASES = (
    "the foundation: get this right and the rest becomes easier",
    "often underestimated, yet it drives a large share of the outcome",
    "varies by region and season, so local conditions matter",
    "improving steadily, with clear gains over the past two years",
    "the area where costs and benefits are easiest to measure",
    "a common source of confusion; definitions differ between sources",
    "closely tied to demand, which remains strong",
)
CLOSINGS = (
    "Overall, {topic} remains relevant, and the outlook is cautiously positive.",
    "If you need a decision, focus first on **{a}**; the other points refine it.",
    "In practice, the best approach combines **{a}** with a regular review of {b}.",
    "For most readers, the takeaway is simple: {topic} rewards careful planning.",
)
CHAIN_BRIDGE = "Building on what we discussed earlier, here is a more focused answer."
SOURCES = (
    ("en.wikipedia.org", "wiki/{Kw}", "{Kw} - Wikipedia"),
    ("www.statista.com", "topics/{kw}/", "{Kw}: statistics and facts | Statista"),
    ("www.reuters.com", "business/{kw}-outlook-2025/", "{Kw} outlook for 2025 | Reuters"),
    ("www.grandviewresearch.com", "industry-analysis/{kw}-market-report", "{Kw} Market Size & Share Report"),
    ("www.bbc.com", "news/{kw}-explained", "{Kw} explained - BBC News"),
)
REASONING_SUMMARIES = (
    "**Clarifying the question**\n\nThe user asks about {topic}. I should identify the main factors, "
    "starting with {a}, and give a structured overview with a short conclusion.",
    "**Planning the answer**\n\nI need to cover {a} and {b} for {topic}. A heading, a short list of key "
    "points and a closing recommendation should make it easy to scan.",
)


def seed_of(*, provider: str, model_name: str, fields: dict) -> int:
    """The hash an answer is derived from: the prompt, system message, chain and model."""
    material = json.dumps(
        [
            provider,
            model_name,
            fields.get("user_prompt", ""),
            fields.get("system_message", ""),
            fields.get("message_chain", []),
        ],
        sort_keys=True,
    )
    return int.from_bytes(hashlib.sha256(material.encode()).digest()[:8], "big")


def keywords(prompt: str, limit: int = 4) -> list[str]:
    """The prompt's content words, in order, without repeats (the answer mentions them)."""
    found: list[str] = []
    for word in re.findall(r"[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ'-]{2,}", prompt):
        word = word.lower().strip("'-")
        if word not in STOPWORDS and word not in found:
            found.append(word)
    return found[:limit] or ["this topic"]


def tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _slug(word: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", word.lower()).strip("-") or "topic"


def _sources(kws: list[str], rng: random.Random, provider: str) -> list[dict]:
    chosen = rng.sample(SOURCES, 3)
    suffix = "?utm_source=openai" if provider == "chat_gpt" else ""
    sources = []
    for i, (domain, path, title) in enumerate(chosen):
        kw = kws[i % len(kws)]
        fill = {"kw": _slug(kw), "Kw": _slug(kw).replace("-", "_").capitalize()}
        sources.append(
            {
                "domain": domain,
                "url": f"https://{domain}/{path.format(**fill)}{suffix}",
                "title": title.format(Kw=kw.capitalize(), kw=kw),
            }
        )
    return sources


def _markdown(kws: list[str], rng: random.Random, fields: dict, sources: list[dict]) -> str:
    topic = " ".join(kws[:2])
    a, b = kws[0], kws[1 % len(kws)]
    fill = {"topic": topic, "Topic": topic[:1].upper() + topic[1:], "a": a, "b": b}
    cite = iter(f" ([{s['domain']}]({s['url']}))" for s in sources)

    def cited(sentence: str) -> str:
        # With web search, a sentence ends with a markdown link to its source, like ChatGPT's answers.
        return sentence + next(cite, "")

    paragraphs = [f"## {' '.join(w.capitalize() for w in kws[:3])}: what to know"]
    if fields.get("message_chain"):
        paragraphs.append(CHAIN_BRIDGE)
    paragraphs.append(
        cited(rng.choice(OPENINGS).format(**fill)) + " " + rng.choice(CONTEXT_SENTENCES).format(**fill)
    )
    points = rng.sample(POINT_PHRASES, min(len(kws) + 1, 4))
    names = [*kws, "context"]
    bullets = [f"- **{names[i].capitalize()}**: {phrase}." for i, phrase in enumerate(points)]
    paragraphs.append("Key points:\n\n" + "\n".join(bullets))
    paragraphs.append(cited(f"When it comes to {a}, the numbers tell a consistent story across sources."))
    paragraphs.append(cited(rng.choice(CLOSINGS).format(**fill)))
    return "\n\n".join(paragraphs)


def _truncate(text: str, max_tokens: int) -> str:
    """Cut the answer where the token budget runs out, at a word boundary when there is one."""
    limit = max_tokens * CHARS_PER_TOKEN
    if len(text) <= limit:
        return text
    cut = text[:limit]
    return cut.rsplit(" ", 1)[0] if " " in cut else cut


def _annotations(text: str, sources: list[dict], provider: str) -> list[dict]:
    """One annotation per citation that survived truncation; ChatGPT's point at the cited span."""
    annotations = []
    for source in sources:
        span = f"[{source['domain']}]({source['url']})"
        start = text.find(span)
        if start < 0:
            continue
        annotation = {"title": source["title"], "url": source["url"]}
        if provider in ("chat_gpt", "gemini"):
            annotation |= {"start_index": start, "end_index": start + len(span), "text": span}
        if provider == "gemini":
            # Gemini's url is a Vertex AI redirect; direct_url is the page itself.
            annotation["url"] = (
                f"https://vertexaisearch.cloud.google.com/grounding-api-redirect/{_slug(span)}"
            )
            annotation["direct_url"] = source["url"]
        annotations.append(annotation)
    return annotations


def money_spent(model: CatalogModel, *, input_tokens: int, output_tokens: int, web_search: bool) -> Decimal:
    spent = (input_tokens * model.input_price + output_tokens * model.output_price) / Decimal(1_000_000)
    if web_search:
        spent += WEB_SEARCH_FEE
    return spent.quantize(Decimal("0.000001"))


def compose_result(*, provider: str, model: CatalogModel, fields: dict, finished_at: datetime) -> dict:
    """result[0] of a finished task, for a task that passed the rules."""
    rng = random.Random(seed_of(provider=provider, model_name=model.dated_name, fields=fields))
    kws = keywords(fields["user_prompt"])
    # Perplexity's Sonar models always search (and the search is billed); its items carry no reasoning.
    web_search = fields.get("web_search") is True or (provider == "perplexity" and model.web_search_supported)
    if provider == "chat_gpt":
        reasoning = model.reasoning
    elif provider == "gemini":
        reasoning = fields.get("use_reasoning") is True or "-pro" in model.base_name
    elif provider == "perplexity":
        reasoning = False
    else:
        reasoning = fields.get("use_reasoning") is True
    sources = _sources(kws, rng, provider) if web_search else []

    max_tokens = fields.get("max_output_tokens") or DEFAULT_MAX_OUTPUT_TOKENS
    text = _truncate(_markdown(kws, rng, fields, sources), max_tokens)

    prompt_texts = [fields["user_prompt"], fields.get("system_message", "")]
    prompt_texts += [m["message"] for m in fields.get("message_chain", [])]
    input_tokens = sum(tokens(t) + TOKENS_PER_MESSAGE for t in prompt_texts if t)
    if web_search:
        input_tokens += WEB_SEARCH_INPUT_TOKENS
    output_tokens = tokens(text)

    items = []
    reasoning_tokens = 0
    if reasoning:
        topic = " ".join(kws[:2])
        summary = rng.choice(REASONING_SUMMARIES).format(topic=topic, a=kws[0], b=kws[-1])
        # The summary is a fraction of what the model actually thought about.
        reasoning_tokens = tokens(summary) * rng.randint(3, 6)
        items.append({"type": "reasoning", "sections": [{"type": "summary_text", "text": summary}]})
    items.append(
        {
            "type": "message",
            "sections": [
                {
                    "type": "text",
                    "text": text,
                    "annotations": _annotations(text, sources, provider) if web_search else None,
                }
            ],
        }
    )
    fan_out = [f"{' '.join(kws[:2])} 2025", f"latest {kws[0]} statistics"] if web_search else []
    spent = money_spent(
        model,
        input_tokens=input_tokens,
        output_tokens=output_tokens + reasoning_tokens,
        web_search=web_search,
    )
    return {
        "model_name": model.dated_name,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "reasoning_tokens": reasoning_tokens,
        "web_search": web_search,
        "money_spent": float(spent),
        "datetime": finished_at.strftime("%Y-%m-%d %H:%M:%S +00:00"),
        "items": items,
        "fan_out_queries": fan_out,
    }
