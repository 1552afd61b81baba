"""The field rules of the LLM Responses API (api-reference §2), as the stand-in enforces them.

`check_task` runs the rules below in order and reports the first one a task breaks; the view answers that task
with 40501 "Invalid Field: '<field>'." followed by a short reason. The rules are deliberately written out one
by one, so that a reader can compare them line by line with the reference and with the product's own form.

A field sent as JSON null counts as not sent (except the required ones), as the upstream tolerates it.
"""

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.catalog import CatalogModel, find_model

# --- The tables -------------------------------------------------------------------------------------------

# Every field a task may carry, with its JSON type. Anything else is an unknown field (40501).
COMMON_FIELDS: dict[str, str] = {
    "user_prompt": "string",
    "model_name": "string",
    "max_output_tokens": "integer",
    "temperature": "number",
    "top_p": "number",
    "system_message": "string",
    "message_chain": "array",
    "tag": "string",
    "postback_url": "string",
    "pingback_url": "string",
    "web_search": "boolean",
    "force_web_search": "boolean",
    "web_search_country_iso_code": "string",
    "web_search_city": "string",
}
_NO_SEARCH_FIELDS = ("force_web_search", "web_search_country_iso_code", "web_search_city")
PROVIDER_FIELDS: dict[str, dict[str, str]] = {
    "chat_gpt": COMMON_FIELDS,
    "claude": COMMON_FIELDS | {"use_reasoning": "boolean"},
    # Gemini: web_search but no forcing and no location.
    "gemini": {k: v for k, v in COMMON_FIELDS.items() if k not in _NO_SEARCH_FIELDS}
    | {"use_reasoning": "boolean"},
    # Perplexity: live only (no callbacks), no web_search flag (Sonar always searches), a country for Sonar.
    "perplexity": {
        k: v
        for k, v in COMMON_FIELDS.items()
        if k not in ("postback_url", "pingback_url", "web_search", "force_web_search", "web_search_city")
    },
}
# Callbacks only make sense for queued tasks; live answers in the same request and rejects them.
CALLBACK_FIELDS = ("postback_url", "pingback_url")

MAX_PROMPT_LENGTH = 500
MAX_SYSTEM_MESSAGE_LENGTH = 500
MAX_CHAIN_ITEMS = 10
MAX_CHAIN_MESSAGE_LENGTH = 500
CHAIN_ROLES = ("user", "ai")
MAX_TAG_LENGTH = 255
MAX_OUTPUT_TOKENS = 4096
TOP_P_RANGE = (0.0, 1.0)

_CLAUDE_COUNTRIES_TEXT = """
    AR AT AU BE BR CA CH CL CN DE DK ES FI FR GB HK ID IN IT JP KR MX
    MY NL NO NZ PH PL PT RU SA SE TR TW US ZA"""
CLAUDE_COUNTRIES = frozenset(_CLAUDE_COUNTRIES_TEXT.split())


@dataclass(frozen=True)
class ProviderLimits:
    temperature: tuple[float, float]
    min_output_tokens: int  # ordinary runs
    min_output_tokens_reasoning: int  # reasoning runs (ChatGPT reasoning models, Claude with use_reasoning)
    countries: frozenset[str] | None  # None: any two-letter code
    no_location_models: frozenset[str]  # base names that take no country or city
    reasoning_forbids_sampling: bool = True  # no temperature, top_p or forced search in a reasoning run
    use_reasoning_needs_reasoning_model: bool = True
    forced_reasoning_marker: str | None = None  # Gemini: "-pro" models always reason
    country_needs_web_search: bool = True
    country_model_prefix: str | None = None  # Perplexity: a country only for Sonar models
    alternating_chain: bool = False  # Perplexity: user, ai, user, ai…


LIMITS: dict[str, ProviderLimits] = {
    "chat_gpt": ProviderLimits(
        temperature=(0.0, 2.0),
        min_output_tokens=16,
        min_output_tokens_reasoning=1024,
        countries=None,
        no_location_models=frozenset({"o1", "o1-pro", "o3-mini"}),
    ),
    "claude": ProviderLimits(
        temperature=(0.0, 1.0),
        min_output_tokens=1,
        min_output_tokens_reasoning=1025,
        countries=CLAUDE_COUNTRIES,
        no_location_models=frozenset(),
    ),
    "gemini": ProviderLimits(
        temperature=(0.0, 2.0),
        min_output_tokens=1,
        min_output_tokens_reasoning=1024,
        countries=None,
        no_location_models=frozenset(),
        reasoning_forbids_sampling=False,
        use_reasoning_needs_reasoning_model=False,
        forced_reasoning_marker="-pro",
    ),
    "perplexity": ProviderLimits(
        temperature=(0.0, 1.9),
        min_output_tokens=1,
        min_output_tokens_reasoning=1,
        countries=None,
        no_location_models=frozenset(),
        reasoning_forbids_sampling=False,
        country_needs_web_search=False,
        country_model_prefix="sonar",
        alternating_chain=True,
    ),
}


# --- What a rule sees and what it reports ------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    field: str
    reason: str

    @property
    def status_message(self) -> str:
        return f"Invalid Field: '{self.field}'. {self.reason}"


@dataclass(frozen=True)
class TaskRequest:
    """One task object of a POST, with the facts the rules ask about."""

    provider: str
    function: str  # "task_post" or "live"
    fields: dict  # the task object, null values dropped

    @property
    def model(self) -> CatalogModel | None:
        return find_model(self.provider, self.fields.get("model_name"))

    @property
    def limits(self) -> ProviderLimits:
        return LIMITS[self.provider]

    @property
    def is_reasoning_run(self) -> bool:
        """ChatGPT reasoning models always reason; Claude and Gemini when asked with use_reasoning, and
        Gemini's Pro models always (the upstream turns use_reasoning on)."""
        if self.provider in ("claude", "gemini"):
            marker = self.limits.forced_reasoning_marker
            forced = bool(marker and self.model and marker in self.model.base_name)
            return self.fields.get("use_reasoning") is True or forced
        return bool(self.model and self.model.reasoning)

    def has(self, name: str) -> bool:
        return name in self.fields


Rule = Callable[[TaskRequest], Violation | None]


def _is_of_type(value: object, json_type: str) -> bool:
    if json_type == "string":
        return isinstance(value, str)
    if json_type == "boolean":
        return isinstance(value, bool)
    if json_type == "integer":  # bool is an int in Python, not in JSON
        return isinstance(value, int) and not isinstance(value, bool)
    if json_type == "number":
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if json_type == "array":
        return isinstance(value, list)
    raise ValueError(json_type)


def _in_range(value: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= value <= bounds[1]


# --- The rules, in the order they are checked ---------------------------------------------------------------


def no_unknown_fields(task: TaskRequest) -> Violation | None:
    allowed = PROVIDER_FIELDS[task.provider]
    for name in task.fields:
        if name not in allowed:
            return Violation(name, "This field is not supported.")
        if task.function == "live" and name in CALLBACK_FIELDS:
            return Violation(name, "Callbacks are not available for live tasks.")
    return None


def fields_have_their_types(task: TaskRequest) -> Violation | None:
    allowed = PROVIDER_FIELDS[task.provider]
    for name, value in task.fields.items():
        if not _is_of_type(value, allowed[name]):
            return Violation(name, f"Must be a{'n' if allowed[name][0] in 'aeiou' else ''} {allowed[name]}.")
    return None


def user_prompt_is_required(task: TaskRequest) -> Violation | None:
    prompt = task.fields.get("user_prompt")
    if not prompt:
        return Violation("user_prompt", "This field is required.")
    if len(prompt) > MAX_PROMPT_LENGTH:
        return Violation("user_prompt", f"At most {MAX_PROMPT_LENGTH} characters.")
    return None


def model_is_in_the_catalog(task: TaskRequest) -> Violation | None:
    if not task.has("model_name"):
        return Violation("model_name", "This field is required.")
    if task.model is None:
        return Violation("model_name", "Unknown model; see the models endpoint.")
    return None


def model_supports_task_post(task: TaskRequest) -> Violation | None:
    if task.function == "task_post" and not task.model.task_post_supported:
        return Violation("model_name", "This model is available in live mode only.")
    return None


def use_reasoning_needs_a_reasoning_model(task: TaskRequest) -> Violation | None:
    if not task.limits.use_reasoning_needs_reasoning_model:
        return None
    if task.fields.get("use_reasoning") is True and not task.model.reasoning:
        return Violation("use_reasoning", "This model does not support reasoning.")
    return None


def max_output_tokens_in_range(task: TaskRequest) -> Violation | None:
    if not task.has("max_output_tokens"):
        return None
    if task.is_reasoning_run:
        minimum = task.limits.min_output_tokens_reasoning
    else:
        minimum = task.limits.min_output_tokens
    if not minimum <= task.fields["max_output_tokens"] <= MAX_OUTPUT_TOKENS:
        return Violation("max_output_tokens", f"Must be between {minimum} and {MAX_OUTPUT_TOKENS}.")
    return None


def temperature_in_range(task: TaskRequest) -> Violation | None:
    bounds = task.limits.temperature
    if task.has("temperature") and not _in_range(task.fields["temperature"], bounds):
        return Violation("temperature", f"Must be between {bounds[0]:g} and {bounds[1]:g}.")
    return None


def top_p_in_range(task: TaskRequest) -> Violation | None:
    if task.has("top_p") and not _in_range(task.fields["top_p"], TOP_P_RANGE):
        return Violation("top_p", "Must be between 0 and 1.")
    return None


def temperature_and_top_p_are_exclusive(task: TaskRequest) -> Violation | None:
    if task.has("temperature") and task.has("top_p"):
        return Violation("top_p", "Cannot be used together with temperature.")
    return None


def reasoning_runs_take_no_sampling_or_forced_search(task: TaskRequest) -> Violation | None:
    if not task.is_reasoning_run or not task.limits.reasoning_forbids_sampling:
        return None
    why = (
        "Not supported by reasoning models."
        if task.provider == "chat_gpt"
        else "Not allowed with use_reasoning."
    )
    for name in ("temperature", "top_p"):
        if task.has(name):
            return Violation(name, why)
    if task.fields.get("force_web_search") is True:
        return Violation("force_web_search", why)
    return None


def system_message_length(task: TaskRequest) -> Violation | None:
    if len(task.fields.get("system_message", "")) > MAX_SYSTEM_MESSAGE_LENGTH:
        return Violation("system_message", f"At most {MAX_SYSTEM_MESSAGE_LENGTH} characters.")
    return None


def message_chain_shape(task: TaskRequest) -> Violation | None:
    chain = task.fields.get("message_chain", [])
    if len(chain) > MAX_CHAIN_ITEMS:
        return Violation("message_chain", f"At most {MAX_CHAIN_ITEMS} messages.")
    for item in chain:
        if not isinstance(item, dict) or set(item) != {"role", "message"}:
            return Violation("message_chain", 'Each item must be {"role": ..., "message": ...}.')
        if item["role"] not in CHAIN_ROLES:
            return Violation("message_chain", "role must be 'user' or 'ai'.")
        if not isinstance(item["message"], str) or len(item["message"]) > MAX_CHAIN_MESSAGE_LENGTH:
            return Violation(
                "message_chain", f"message must be a string of at most {MAX_CHAIN_MESSAGE_LENGTH}."
            )
    return None


def message_chain_alternates(task: TaskRequest) -> Violation | None:
    if not task.limits.alternating_chain:
        return None
    for i, item in enumerate(task.fields.get("message_chain", [])):
        if item["role"] != CHAIN_ROLES[i % 2]:
            return Violation("message_chain", "Messages must alternate strictly: user, ai, user, ai.")
    return None


def tag_length(task: TaskRequest) -> Violation | None:
    if len(task.fields.get("tag", "")) > MAX_TAG_LENGTH:
        return Violation("tag", f"At most {MAX_TAG_LENGTH} characters.")
    return None


def callback_urls_are_http(task: TaskRequest) -> Violation | None:
    for name in CALLBACK_FIELDS:
        if task.has(name) and not re.match(r"https?://[^/\s]+", task.fields[name]):
            return Violation(name, "Must be an absolute http(s) URL.")
    return None


def web_search_needs_support(task: TaskRequest) -> Violation | None:
    if task.fields.get("web_search") is True and not task.model.web_search_supported:
        return Violation("web_search", "This model does not support web search.")
    return None


def force_web_search_needs_web_search(task: TaskRequest) -> Violation | None:
    if task.fields.get("force_web_search") is True and task.fields.get("web_search") is not True:
        return Violation("force_web_search", "Requires web_search: true.")
    return None


def location_needs_web_search(task: TaskRequest) -> Violation | None:
    needs = task.limits.country_needs_web_search
    if needs and task.has("web_search_country_iso_code") and task.fields.get("web_search") is not True:
        return Violation("web_search_country_iso_code", "Requires web_search: true.")
    if task.has("web_search_city") and not task.has("web_search_country_iso_code"):
        return Violation("web_search_city", "Requires web_search_country_iso_code.")
    return None


def location_supported_by_model(task: TaskRequest) -> Violation | None:
    if task.model.base_name in task.limits.no_location_models:
        for name in ("web_search_country_iso_code", "web_search_city"):
            if task.has(name):
                return Violation(name, "Not supported by this model.")
    return None


def country_only_for_sonar_models(task: TaskRequest) -> Violation | None:
    prefix = task.limits.country_model_prefix
    if prefix and task.has("web_search_country_iso_code") and not task.model.base_name.startswith(prefix):
        return Violation("web_search_country_iso_code", "Only Sonar models take a country.")
    return None


def country_code_is_known(task: TaskRequest) -> Violation | None:
    code = task.fields.get("web_search_country_iso_code")
    if code is None:
        return None
    countries = task.limits.countries
    if countries is None and not re.fullmatch(r"[A-Za-z]{2}", code):
        return Violation("web_search_country_iso_code", "Must be a two-letter ISO country code.")
    if countries is not None and code.upper() not in countries:
        return Violation("web_search_country_iso_code", "Not one of the supported countries.")
    return None


# Order matters only for which violation is reported when a task breaks several rules. The rules after
# model_is_in_the_catalog may rely on task.model being known.
RULES: tuple[Rule, ...] = (
    no_unknown_fields,
    fields_have_their_types,
    user_prompt_is_required,
    model_is_in_the_catalog,
    model_supports_task_post,
    use_reasoning_needs_a_reasoning_model,
    max_output_tokens_in_range,
    temperature_in_range,
    top_p_in_range,
    temperature_and_top_p_are_exclusive,
    reasoning_runs_take_no_sampling_or_forced_search,
    system_message_length,
    message_chain_shape,
    message_chain_alternates,
    tag_length,
    callback_urls_are_http,
    web_search_needs_support,
    force_web_search_needs_web_search,
    location_needs_web_search,
    location_supported_by_model,
    country_only_for_sonar_models,
    country_code_is_known,
)


def check_task(provider: str, function: str, task: object) -> Violation | None:
    """The first rule `task` breaks when sent to `provider`'s `function` (task_post or live), or None."""
    if not isinstance(task, dict):
        return Violation("task", "Each task must be a JSON object.")
    request = TaskRequest(provider, function, {k: v for k, v in task.items() if v is not None})
    for rule in RULES:
        violation = rule(request)
        if violation:
            return violation
    return None
