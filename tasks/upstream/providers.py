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

from tasks.upstream import fields
from tasks.upstream.fields import (  # noqa: F401 - the names the form and the views use
    CHAIN_ROLES,
    DEFAULT_MAX_OUTPUT_TOKENS,
    MAX_CHAIN_TURNS,
    MAX_OUTPUT_TOKENS,
    MAX_TAG_LENGTH,
    MAX_TEXT_LENGTH,
    FieldRule,
    Kind,
)

# api-reference §6: a queued task is charged a $0.01 prepayment plus a small base fee at post; the
# unused part of the prepayment is refunded when it finishes. A live task costs base + money_spent.
QUEUED_PREPAYMENT = Decimal("0.01")
QUEUED_BASE_FEE = Decimal("0.0002")
LIVE_BASE_FEE = Decimal("0.0006")


# A live task's model cost is known only from its answer; the charge reserved for it until then (and shown
# in the builder) is the base price plus this, about what a short answer with web search costs.
LIVE_MODEL_COST_ESTIMATE = Decimal("0.01")


def queued_charge_per_task(*, price_multiplier: Decimal = Decimal("1")) -> Decimal:
    """What one task_post task is charged up front, before its real cost is known."""
    return (QUEUED_PREPAYMENT + QUEUED_BASE_FEE) * price_multiplier


def live_charge_per_task(*, price_multiplier: Decimal = Decimal("1")) -> Decimal:
    """What one live task is reserved at until its answer says what it cost ($0.0006 + money_spent)."""
    return (LIVE_BASE_FEE + LIVE_MODEL_COST_ESTIMATE) * price_multiplier


def charge_per_task(*, mode: str, price_multiplier: Decimal = Decimal("1")) -> Decimal:
    if mode == "live":
        return live_charge_per_task(price_multiplier=price_multiplier)
    return queued_charge_per_task(price_multiplier=price_multiplier)


# --- The tables -------------------------------------------------------------------------------------

# api-reference §2: the only countries Claude's web search takes.
CLAUDE_COUNTRIES = tuple(
    "AR AT AU BE BR CA CH CL CN DE DK ES FI FR GB HK ID IN IT JP KR MX MY NL NO NZ PH PL PT RU SA SE TR TW US ZA".split()  # noqa: SIM905, E501
)

QUEUE_OR_LIVE = (
    "Queue (task_post): the answer comes back later, from a $0.01 prepayment. Live: one task answered at "
    "once (up to 2 minutes), at $0.0006 plus the model's cost. A model that cannot be queued runs live only."
)


@dataclass(frozen=True)
class ProviderRules:
    slug: str
    label: str
    fields: tuple[FieldRule, ...]
    min_output_tokens: int
    min_output_tokens_reasoning: int
    # Claude and Gemini reason only when asked (use_reasoning); ChatGPT reasoning models always do.
    reasoning_switch: str | None = None
    no_location_models: frozenset[str] = field(default_factory=frozenset)
    live_only: bool = False  # Perplexity: task_post answers 404
    # Gemini: the upstream turns use_reasoning on for models whose base name contains this ("-pro").
    forced_reasoning_marker: str | None = None
    reasoning_forbids_sampling: bool = True  # temperature, top_p and forced search not in reasoning runs
    country_model_prefix: str | None = None  # Perplexity: a country only for Sonar models
    alternating_chain: bool = False  # Perplexity: the chain strictly alternates user → ai

    def field(self, name: str) -> FieldRule | None:
        return next((rule for rule in self.fields if rule.name == name), None)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(rule.name for rule in self.fields)

    @property
    def default_mode(self) -> str:
        return LIVE if self.live_only else TASK_POST


TASK_POST, LIVE = "task_post", "live"
NOT_IN_REASONING = "; not for reasoning runs"

CHAT_GPT = ProviderRules(
    slug="chat_gpt",
    label="ChatGPT",
    fields=(
        fields.user_prompt(),
        fields.system_message(),
        fields.message_chain(),
        fields.model_name(),
        fields.mode(QUEUE_OR_LIVE),
        fields.max_output_tokens(),
        fields.temperature((0.0, 2.0), 0.94, NOT_IN_REASONING),
        fields.top_p(0.92, NOT_IN_REASONING),
        fields.web_search(),
        fields.force_web_search(),
        fields.country(
            "Two-letter ISO code (e.g. FR) to localise the search. Needs web search; "
            "not for o1, o1-pro or o3-mini."
        ),
        fields.city(),
        fields.tag(),
        *fields.callbacks(),
    ),
    min_output_tokens=16,
    min_output_tokens_reasoning=1024,
    no_location_models=frozenset({"o1", "o1-pro", "o3-mini"}),
)

CLAUDE = ProviderRules(
    slug="claude",
    label="Claude",
    fields=(
        fields.user_prompt(),
        fields.system_message(),
        fields.message_chain(),
        fields.model_name(),
        fields.mode(QUEUE_OR_LIVE),
        fields.max_output_tokens(),
        fields.temperature((0.0, 1.0), 0.7, NOT_IN_REASONING),
        fields.top_p(None, NOT_IN_REASONING),
        fields.web_search(),
        fields.force_web_search(),
        fields.country(
            "Localise the search to one of the countries Claude supports. Needs web search.",
            choices=CLAUDE_COUNTRIES,
        ),
        fields.city(),
        fields.tag(),
        *fields.callbacks(),
        fields.use_reasoning(
            "Think before answering (reasoning models only). Then max output tokens ≥ 1025 and no "
            "temperature, top_p or forced web search."
        ),
    ),
    min_output_tokens=1,
    min_output_tokens_reasoning=1025,
    reasoning_switch="use_reasoning",
)

# api-reference §2, from the official client 2.1.10. Whether Gemini models can be queued is unconfirmed
# (recent `models` answers say task_post_supported: false for all): the catalog decides, at run time.
GEMINI = ProviderRules(
    slug="gemini",
    label="Gemini",
    fields=(
        fields.user_prompt(),
        fields.system_message(),
        fields.message_chain(),
        fields.model_name(
            "From Gemini's catalog. An alias such as gemini-2.5-pro runs its newest dated version. Whether "
            "a model can be queued is read from the models list when it is refreshed (the upstream's docs "
            "disagree); one that cannot runs live."
        ),
        fields.mode(QUEUE_OR_LIVE),
        fields.max_output_tokens(
            f"1–{fields.MAX_OUTPUT_TOKENS}; at least 1024 when reasoning (always on for Pro models)."
        ),
        fields.temperature((0.0, 2.0), 1.3),
        fields.top_p(0.9),
        fields.web_search(),
        fields.tag(),
        *fields.callbacks(),
        fields.use_reasoning(
            "Think before answering; then max output tokens ≥ 1024. The upstream turns it on for Pro "
            "models whatever you choose.",
            model_flag=None,
        ),
    ),
    min_output_tokens=1,
    min_output_tokens_reasoning=1024,
    reasoning_switch="use_reasoning",
    forced_reasoning_marker="-pro",
    reasoning_forbids_sampling=False,
)

PERPLEXITY = ProviderRules(
    slug="perplexity",
    label="Perplexity",
    fields=(
        fields.user_prompt(),
        fields.system_message(),
        fields.message_chain(" Perplexity needs them to alternate strictly: user, AI, user, AI…"),
        fields.model_name(
            "From Perplexity's catalog. Sonar models always search the web (and the search is billed)."
        ),
        fields.mode(
            "Perplexity answers live only: one task at a time, up to 2 minutes, at $0.0006 plus "
            "the model's cost."
        ),
        fields.max_output_tokens(f"1–{fields.MAX_OUTPUT_TOKENS}."),
        fields.temperature((0.0, 1.9), 0.77),
        fields.top_p(0.9),
        fields.country(
            "Two-letter ISO code (e.g. FR) to localise the search. Sonar models only.", requires=()
        ),
        fields.tag(),
    ),
    min_output_tokens=1,
    min_output_tokens_reasoning=1,
    live_only=True,
    reasoning_forbids_sampling=False,
    country_model_prefix="sonar",
    alternating_chain=True,
)

PROVIDERS: dict[str, ProviderRules] = {rules.slug: rules for rules in (CHAT_GPT, CLAUDE, GEMINI, PERPLEXITY)}
DEFAULT_PROVIDER = CHAT_GPT.slug


def provider_rules(slug: str | None) -> ProviderRules:
    """The rules of a provider; an unknown or missing slug gives the default provider."""
    return PROVIDERS.get(slug or "", PROVIDERS[DEFAULT_PROVIDER])


# The tag the product gives an untagged task (its id after it), to find it upstream if its reply is lost.
OWN_TAG_PREFIX = "aisa-dashboard:"


def tag_problem(tag: str) -> str:
    """Why `tag` cannot be a task's tag, or "". The upstream takes any string of up to 255 characters;
    the product takes any of them that is one line: no control characters (line breaks, tabs, NUL…) and
    no Unicode line or paragraph separators. Pages and URLs still work with any stored tag."""
    if any(unicodedata.category(char) in ("Cc", "Zl", "Zp") for char in tag):
        return "A tag is one line: no line breaks, tabs or other control characters."
    if tag.startswith(OWN_TAG_PREFIX):
        return (
            f"A tag starting with “{OWN_TAG_PREFIX}” is the product's own: it tags an untagged task so, to "
            "find it upstream if its reply is lost. Choose another tag, or leave it empty."
        )
    return ""


# --- Models -----------------------------------------------------------------------------------------

# OpenAI's and Perplexity's dates (-2025-04-14), Anthropic's (-20250929), Gemini's previews (-preview-06-05)
# and numbered versions (-001).
_DATED_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|preview-\d{2}-\d{2}|\d{3})$")


def model_base_name(model_name: str) -> str:
    """`gpt-4.1-2025-04-14` → `gpt-4.1`, `gemini-2.5-pro-preview-06-05` → `gemini-2.5-pro`: rules that name
    models name their base names."""
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


def reasoning_is_forced(rules: ProviderRules, model: ModelFlags | None) -> bool:
    """Gemini's Pro models reason whatever use_reasoning says (the upstream turns it on)."""
    marker = rules.forced_reasoning_marker
    return bool(marker and model and marker in model_base_name(model.model_name))


def is_reasoning_run(rules: ProviderRules, values: dict, model: ModelFlags | None) -> bool:
    if rules.reasoning_switch:
        return values.get(rules.reasoning_switch) is True or reasoning_is_forced(rules, model)
    return bool(model and model.reasoning)


def chosen_mode(rules: ProviderRules, values: dict) -> str:
    """task_post or live: what the person chose, else the provider's default (live for Perplexity)."""
    mode = values.get("mode")
    return mode if mode in (TASK_POST, LIVE) else rules.default_mode


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
    rules: ProviderRules, values: dict, model: ModelFlags | None, *, mode: str | None = None
) -> list[Violation]:
    """Every rule of api-reference §2 that `values` (typed, upstream names) break together.

    `model` is None when the model is unknown; rules needing its flags are then skipped (the model
    field itself carries that error). `mode` (task_post or live) defaults to the one `values` chose.
    """
    found: list[Violation] = []
    mode = mode or chosen_mode(rules, values)
    reasoning = is_reasoning_run(rules, values, model)
    label = {rule.name: rule.label for rule in rules.fields}

    if mode == TASK_POST and rules.live_only:
        found.append(Violation(("mode",), f"{rules.label} answers live only; choose Live."))
    elif model is not None and mode == TASK_POST and not model.task_post_supported:
        found.append(Violation(("model_name", "mode"), f"{model.model_name} cannot be queued; send it Live."))
    if mode == LIVE:
        for name in ("pingback_url", "postback_url"):
            if _is_set(values, name):
                found.append(
                    Violation((name, "mode"), "A live task answers at once: callbacks are for queued tasks.")
                )

    for rule in rules.fields:
        flag = rule.model_flag
        if flag and model is not None and values.get(rule.name) is True and not getattr(model, flag):
            need = {"reasoning": "reasoning", "web_search_supported": "web search"}[flag]
            found.append(Violation((rule.name, "model_name"), f"{model.model_name} does not support {need}."))

    if _is_set(values, "temperature") and _is_set(values, "top_p"):
        found.append(Violation(("temperature", "top_p"), "Set temperature or top p, not both."))

    if reasoning and rules.reasoning_forbids_sampling:
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
            elif reasoning_is_forced(rules, model):
                concerned, why = ("model_name",), f" for {model.model_name} (Pro models always reason)"
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

    prefix = rules.country_model_prefix
    if (
        prefix
        and model is not None
        and _is_set(values, "web_search_country_iso_code")
        and not model_base_name(model.model_name).startswith(prefix)
    ):
        found.append(
            Violation(
                ("web_search_country_iso_code", "model_name"),
                f"{model.model_name} does not take a country (Sonar models only).",
            )
        )

    if rules.alternating_chain:
        for i, turn in enumerate(values.get("message_chain") or []):
            if turn.get("role") != ("user", "ai")[i % 2]:
                found.append(
                    Violation(
                        ("message_chain",),
                        f"{rules.label} needs the earlier turns to alternate user, AI, user… "
                        f"(turn {i + 1} should be {'user' if i % 2 == 0 else 'AI'}).",
                    )
                )
                break
    return found
