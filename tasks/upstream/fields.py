"""The request fields every provider draws from (api-reference §2): what a field is (`FieldRule`) and one
builder per field, so that a provider's table in tasks/upstream/providers.py is a list of the fields it
takes with its own ranges and help texts, not a copy of every rule."""

from dataclasses import dataclass

MAX_TEXT_LENGTH = 500  # user_prompt, system_message, each message of the chain
MAX_TAG_LENGTH = 255
MAX_OUTPUT_TOKENS = 4096
DEFAULT_MAX_OUTPUT_TOKENS = 2048
MAX_CHAIN_TURNS = 10
CHAIN_ROLES = (("user", "User"), ("ai", "AI"))


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
    MODE = "mode"  # how the task is sent (task_post or live): not part of the task object


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

    @property
    def in_body(self) -> bool:
        """Whether the field is part of the upstream task object (the mode chooses the endpoint)."""
        return self.kind != Kind.MODE


# --- One builder per field ---------------------------------------------------------------------------


def user_prompt() -> FieldRule:
    return FieldRule(
        "user_prompt",
        "User prompt",
        Kind.LONG_TEXT,
        "What you ask the model. Write {{name}} for a value you fill in at submission.",
        required=True,
        max_length=MAX_TEXT_LENGTH,
        counter=True,
    )


def system_message() -> FieldRule:
    return FieldRule(
        "system_message",
        "System message",
        Kind.LONG_TEXT,
        "Instructions that frame the whole conversation.",
        max_length=MAX_TEXT_LENGTH,
        counter=True,
    )


def message_chain(extra_help: str = "") -> FieldRule:
    return FieldRule(
        "message_chain",
        "Earlier turns",
        Kind.CHAIN,
        f"Up to {MAX_CHAIN_TURNS} earlier messages, oldest first; "
        f"each at most {MAX_TEXT_LENGTH} characters.{extra_help}",
        max_length=MAX_TEXT_LENGTH,
        max_value=MAX_CHAIN_TURNS,
    )


def model_name(help_text: str = "From the provider's catalog.") -> FieldRule:
    return FieldRule("model_name", "Model", Kind.CHOICE, help_text, required=True, section="model")


def mode(help_text: str) -> FieldRule:
    return FieldRule(
        "mode",
        "Send as",
        Kind.MODE,
        help_text,
        choices=("task_post", "live"),
        section="model",
    )


def max_output_tokens(help_text: str = "") -> FieldRule:
    return FieldRule(
        "max_output_tokens",
        "Max output tokens",
        Kind.INTEGER,
        help_text or f"At most {MAX_OUTPUT_TOKENS}; the minimum depends on the model (see below).",
        max_value=MAX_OUTPUT_TOKENS,
        default=DEFAULT_MAX_OUTPUT_TOKENS,
        section="sampling",
    )


def temperature(bounds: tuple[float, float], default: float, extra_help: str = "") -> FieldRule:
    return FieldRule(
        "temperature",
        "Temperature",
        Kind.NUMBER,
        f"{bounds[0]:g}–{bounds[1]:g}. Not together with top_p{extra_help}.",
        min_value=bounds[0],
        max_value=bounds[1],
        step="0.01",
        default=default,
        section="sampling",
    )


def top_p(default: float | None, extra_help: str = "") -> FieldRule:
    return FieldRule(
        "top_p",
        "Top p",
        Kind.NUMBER,
        f"0–1. Not together with temperature{extra_help}.",
        min_value=0,
        max_value=1,
        step="0.01",
        default=default,
        section="sampling",
    )


def web_search() -> FieldRule:
    return FieldRule(
        "web_search",
        "Web search",
        Kind.BOOLEAN,
        "Let the model search the web. Only for models with web search.",
        model_flag="web_search_supported",
        section="search",
    )


def force_web_search() -> FieldRule:
    return FieldRule(
        "force_web_search",
        "Force web search",
        Kind.BOOLEAN,
        "Always search (citations are still not guaranteed). Needs web search; not for reasoning runs.",
        requires=("web_search",),
        section="search",
    )


def country(help_text: str, *, choices: tuple[str, ...] = (), requires=("web_search",)) -> FieldRule:
    return FieldRule(
        "web_search_country_iso_code",
        "Country",
        Kind.COUNTRY,
        help_text,
        requires=requires,
        choices=choices,
        max_length=None if choices else 2,
        section="search",
    )


def city() -> FieldRule:
    return FieldRule(
        "web_search_city",
        "City",
        Kind.TEXT,
        "Localise the search to a city. Needs a country.",
        requires=("web_search", "web_search_country_iso_code"),
        max_length=100,
        section="search",
    )


def use_reasoning(help_text: str, *, model_flag: str | None = "reasoning") -> FieldRule:
    return FieldRule(
        "use_reasoning", "Use reasoning", Kind.BOOLEAN, help_text, model_flag=model_flag, section="model"
    )


def tag() -> FieldRule:
    return FieldRule(
        "tag",
        "Tag",
        Kind.TEXT,
        "Your label for this task, on one line; the upstream echoes it, tag history groups by it.",
        max_length=MAX_TAG_LENGTH,
        counter=True,
        section="meta",
    )


def callbacks() -> tuple[FieldRule, FieldRule]:
    return (
        FieldRule(
            "pingback_url",
            "Pingback URL",
            Kind.URL,
            "Your own URL to GET when the task is done ($id and $tag are substituted). Queued tasks only.",
            section="meta",
        ),
        FieldRule(
            "postback_url",
            "Postback URL",
            Kind.URL,
            "Your own URL to receive the result (gzip JSON POST) when the task is done. Queued tasks only.",
            section="meta",
        ),
    )
