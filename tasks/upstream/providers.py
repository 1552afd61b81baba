"""What each provider accepts and what it costs.

The request builder's field rules (api-reference §2) live here as one table per provider: the form,
the live validation, the preview and the help texts all read them. Adding a provider means adding a
`ProviderRules` to `PROVIDERS`; nothing in the views names a provider.

Two kinds of rule:
- per field (`FieldRule`): type, length, range, choices, the model flag it needs, the fields it needs;
- across fields (`cross_field_violations`): temperature XOR top_p, what a reasoning run forbids, the
  token minimum, what web search enables. Each violation names every field it concerns, so the form can
  show it beside each of them.
"""

import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal

# api-reference §6: a queued task is charged a $0.01 prepayment plus a small base fee at post; the
# unused part of the prepayment is refunded when it finishes. A live task costs base + money_spent.
QUEUED_PREPAYMENT = Decimal("0.01")
QUEUED_BASE_FEE = Decimal("0.0002")
LIVE_BASE_FEE = Decimal("0.0006")


def queued_charge_per_task(*, price_multiplier: Decimal = Decimal("1")) -> Decimal:
    """What one task_post task is charged up front, before its real cost is known."""
    return (QUEUED_PREPAYMENT + QUEUED_BASE_FEE) * price_multiplier


# --- The tables -------------------------------------------------------------------------------------

MAX_TEXT_LENGTH = 500  # user_prompt, system_message, each message of the chain
MAX_TAG_LENGTH = 255
MAX_OUTPUT_TOKENS = 4096
DEFAULT_MAX_OUTPUT_TOKENS = 2048
MAX_CHAIN_TURNS = 10
CHAIN_ROLES = (("user", "User"), ("ai", "AI"))

# api-reference §2: the only countries Claude's web search takes.
CLAUDE_COUNTRIES = tuple(
    "AR AT AU BE BR CA CH CL CN DE DK ES FI FR GB HK ID IN IT JP KR MX MY NL NO NZ PH PL PT RU SA SE TR TW US ZA".split()  # noqa: SIM905, E501
)


class Kind:
    TEXT = "text"  # one line
    LONG_TEXT = "long_text"  # a textarea
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    CHOICE = "choice"
    COUNTRY = "country"  # free two-letter code, or a choice when the provider lists its countries
    CHAIN = "chain"
    URL = "url"


@dataclass(frozen=True)
class FieldRule:
    """One request field: its upstream name and type, and every rule the upstream applies to it alone."""

    name: str
    label: str
    kind: str
    help_text: str = ""
    required: bool = False
    max_length: int | None = None
    min_value: float | None = None
    max_value: float | None = None
    step: str | None = None
    default: object = None  # the upstream's default, shown as a placeholder, never sent
    choices: tuple[str, ...] = ()
    model_flag: str | None = None  # a ProviderModel flag the chosen model must have for a true value
    requires: tuple[str, ...] = ()  # fields that must be set (true) for this one to be sent
    counter: bool = False  # show a live character counter
    section: str = "prompt"  # where the builder places it: prompt, model, sampling, search, meta


@dataclass(frozen=True)
class ProviderRules:
    slug: str
    label: str
    fields: tuple[FieldRule, ...]
    min_output_tokens: int
    min_output_tokens_reasoning: int
    # Claude reasons only when asked (use_reasoning); ChatGPT reasoning models always do.
    reasoning_switch: str | None = None
    no_location_models: frozenset[str] = field(default_factory=frozenset)

    def field(self, name: str) -> FieldRule | None:
        return next((rule for rule in self.fields if rule.name == name), None)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(rule.name for rule in self.fields)


def _common_fields(*, temperature: tuple[float, float], temperature_default, top_p_default, country):
    return (
        FieldRule(
            "user_prompt",
            "User prompt",
            Kind.LONG_TEXT,
            "What you ask the model. Write {{name}} for a value you fill in at submission.",
            required=True,
            max_length=MAX_TEXT_LENGTH,
            counter=True,
        ),
        FieldRule(
            "system_message",
            "System message",
            Kind.LONG_TEXT,
            "Instructions that frame the whole conversation.",
            max_length=MAX_TEXT_LENGTH,
            counter=True,
        ),
        FieldRule(
            "message_chain",
            "Earlier turns",
            Kind.CHAIN,
            f"Up to {MAX_CHAIN_TURNS} earlier messages, oldest first; "
            f"each at most {MAX_TEXT_LENGTH} characters.",
            max_length=MAX_TEXT_LENGTH,
            max_value=MAX_CHAIN_TURNS,
        ),
        FieldRule(
            "model_name",
            "Model",
            Kind.CHOICE,
            "From the provider's catalog. Models that can only run live cannot be queued.",
            required=True,
            section="model",
        ),
        FieldRule(
            "max_output_tokens",
            "Max output tokens",
            Kind.INTEGER,
            f"At most {MAX_OUTPUT_TOKENS}; the minimum depends on the model (see below).",
            max_value=MAX_OUTPUT_TOKENS,
            default=DEFAULT_MAX_OUTPUT_TOKENS,
            section="sampling",
        ),
        FieldRule(
            "temperature",
            "Temperature",
            Kind.NUMBER,
            f"{temperature[0]:g}–{temperature[1]:g}. Not together with top_p; not for reasoning runs.",
            min_value=temperature[0],
            max_value=temperature[1],
            step="0.01",
            default=temperature_default,
            section="sampling",
        ),
        FieldRule(
            "top_p",
            "Top p",
            Kind.NUMBER,
            "0–1. Not together with temperature; not for reasoning runs.",
            min_value=0,
            max_value=1,
            step="0.01",
            default=top_p_default,
            section="sampling",
        ),
        FieldRule(
            "web_search",
            "Web search",
            Kind.BOOLEAN,
            "Let the model search the web. Only for models with web search.",
            model_flag="web_search_supported",
            section="search",
        ),
        FieldRule(
            "force_web_search",
            "Force web search",
            Kind.BOOLEAN,
            "Always search (citations are still not guaranteed). Needs web search; not for reasoning runs.",
            requires=("web_search",),
            section="search",
        ),
        country,
        FieldRule(
            "web_search_city",
            "City",
            Kind.TEXT,
            "Localise the search to a city. Needs a country.",
            requires=("web_search", "web_search_country_iso_code"),
            max_length=100,
            section="search",
        ),
        FieldRule(
            "tag",
            "Tag",
            Kind.TEXT,
            "Your label for this task, on one line; the upstream echoes it, tag history groups by it.",
            max_length=MAX_TAG_LENGTH,
            counter=True,
            section="meta",
        ),
        FieldRule(
            "pingback_url",
            "Pingback URL",
            Kind.URL,
            "Your own URL to GET when the task is done ($id and $tag are substituted).",
            section="meta",
        ),
        FieldRule(
            "postback_url",
            "Postback URL",
            Kind.URL,
            "Your own URL to receive the result (gzip JSON POST) when the task is done.",
            section="meta",
        ),
    )


CHAT_GPT = ProviderRules(
    slug="chat_gpt",
    label="ChatGPT",
    fields=_common_fields(
        temperature=(0.0, 2.0),
        temperature_default=0.94,
        top_p_default=0.92,
        country=FieldRule(
            "web_search_country_iso_code",
            "Country",
            Kind.COUNTRY,
            "Two-letter ISO code (e.g. FR) to localise the search. Needs web search; "
            "not for o1, o1-pro or o3-mini.",
            requires=("web_search",),
            max_length=2,
            section="search",
        ),
    ),
    min_output_tokens=16,
    min_output_tokens_reasoning=1024,
    no_location_models=frozenset({"o1", "o1-pro", "o3-mini"}),
)

CLAUDE = ProviderRules(
    slug="claude",
    label="Claude",
    fields=(
        *_common_fields(
            temperature=(0.0, 1.0),
            temperature_default=0.7,
            top_p_default=None,
            country=FieldRule(
                "web_search_country_iso_code",
                "Country",
                Kind.COUNTRY,
                "Localise the search to one of the countries Claude supports. Needs web search.",
                requires=("web_search",),
                choices=tuple(CLAUDE_COUNTRIES),
                section="search",
            ),
        ),
        FieldRule(
            "use_reasoning",
            "Use reasoning",
            Kind.BOOLEAN,
            "Think before answering (reasoning models only). Then max output tokens ≥ 1025 and no "
            "temperature, top_p or forced web search.",
            model_flag="reasoning",
            section="model",
        ),
    ),
    min_output_tokens=1,
    min_output_tokens_reasoning=1025,
    reasoning_switch="use_reasoning",
)

PROVIDERS: dict[str, ProviderRules] = {rules.slug: rules for rules in (CHAT_GPT, CLAUDE)}
DEFAULT_PROVIDER = CHAT_GPT.slug


def provider_rules(slug: str | None) -> ProviderRules:
    """The rules of a provider; an unknown or missing slug gives the default provider."""
    return PROVIDERS.get(slug or "", PROVIDERS[DEFAULT_PROVIDER])


def tag_problem(tag: str) -> str:
    """Why `tag` cannot be a task's tag, or "". The upstream takes any string of up to 255 characters;
    the product takes any of them that is one line: no control characters (line breaks, tabs, NUL…) and
    no Unicode line or paragraph separators. Pages and URLs still work with any stored tag."""
    if any(unicodedata.category(char) in ("Cc", "Zl", "Zp") for char in tag):
        return "A tag is one line: no line breaks, tabs or other control characters."
    return ""


# --- Models -----------------------------------------------------------------------------------------

_DATED_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")


def model_base_name(model_name: str) -> str:
    """`gpt-4.1-2025-04-14` → `gpt-4.1`: rules that name models name their base names."""
    return _DATED_SUFFIX.sub("", model_name)


@dataclass(frozen=True)
class ModelFlags:
    """What the rules need to know about the chosen model (from a ProviderModel row)."""

    model_name: str
    reasoning: bool = False
    web_search_supported: bool = False
    task_post_supported: bool = True


# --- Cross-field rules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    fields: tuple[str, ...]  # every field the message concerns; shown beside each
    message: str


def is_reasoning_run(rules: ProviderRules, values: dict, model: ModelFlags | None) -> bool:
    if rules.reasoning_switch:
        return values.get(rules.reasoning_switch) is True
    return bool(model and model.reasoning)


def min_output_tokens(rules: ProviderRules, values: dict, model: ModelFlags | None) -> int:
    if is_reasoning_run(rules, values, model):
        return rules.min_output_tokens_reasoning
    return rules.min_output_tokens


def is_blank(value) -> bool:
    """Not sent: None, False, "" or []. (0 is a value: `0 in (False,)` is true in Python.)"""
    return value is None or value is False or (isinstance(value, str | list) and not value)


def _is_set(values: dict, name: str) -> bool:
    return not is_blank(values.get(name))


def cross_field_violations(
    rules: ProviderRules, values: dict, model: ModelFlags | None, *, mode: str = "task_post"
) -> list[Violation]:
    """Every rule of api-reference §2 that `values` (typed, upstream names) break together.

    `model` is None when the model is unknown; rules needing its flags are then skipped (the model
    field itself carries that error).
    """
    found: list[Violation] = []
    reasoning = is_reasoning_run(rules, values, model)
    label = {rule.name: rule.label for rule in rules.fields}

    if model is not None and mode == "task_post" and not model.task_post_supported:
        found.append(Violation(("model_name",), f"{model.model_name} cannot be queued; it runs live only."))

    for rule in rules.fields:
        flag = rule.model_flag
        if flag and model is not None and values.get(rule.name) is True and not getattr(model, flag):
            need = {"reasoning": "reasoning", "web_search_supported": "web search"}[flag]
            found.append(Violation((rule.name, "model_name"), f"{model.model_name} does not support {need}."))

    if _is_set(values, "temperature") and _is_set(values, "top_p"):
        found.append(Violation(("temperature", "top_p"), "Set temperature or top p, not both."))

    if reasoning:
        why = (
            f"{model.model_name} is a reasoning model: "
            if not rules.reasoning_switch and model
            else "With use reasoning on, "
        )
        concerned = ("use_reasoning",) if rules.reasoning_switch else ("model_name",)
        for name in ("temperature", "top_p"):
            if _is_set(values, name):
                found.append(Violation((name, *concerned), f"{why}{label[name].lower()} cannot be sent."))
        if values.get("force_web_search") is True:
            found.append(Violation(("force_web_search", *concerned), f"{why}web search cannot be forced."))

    tokens = values.get("max_output_tokens")
    if isinstance(tokens, int):
        minimum = min_output_tokens(rules, values, model)
        if tokens < minimum:
            if not reasoning:
                concerned, why = (), ""
            elif rules.reasoning_switch:
                concerned, why = (rules.reasoning_switch,), " with use reasoning on"
            else:
                concerned, why = ("model_name",), " for a reasoning model"
            found.append(Violation(("max_output_tokens", *concerned), f"Must be at least {minimum}{why}."))

    for rule in rules.fields:
        for needed in rule.requires:
            if _is_set(values, rule.name) and not _is_set(values, needed):
                found.append(Violation((rule.name, needed), f"{rule.label} needs {label[needed].lower()}."))
                break

    if model is not None and model_base_name(model.model_name) in rules.no_location_models:
        for name in ("web_search_country_iso_code", "web_search_city"):
            if _is_set(values, name):
                found.append(
                    Violation(
                        (name, "model_name"), f"{model.model_name} does not take a {label[name].lower()}."
                    )
                )
    return found
