"""The stand-in's model catalog: which models each provider offers, and what they cost.

This is the one place to read (or change) what the `models` endpoint lists and what the validation rules and
the answer generator know about a model. A request may name a model by its base name (`gpt-4.1`) or by its
dated version (`gpt-4.1-2025-04-14`); results always report the dated version, as the upstream does.

Prices are USD per million tokens, roughly the providers' list prices, so that `money_spent` looks like what
DataForSEO reports (a few thousandths of a dollar for a short answer; more for o1 and the Opus models).
"""

from dataclasses import dataclass
from decimal import Decimal

PROVIDERS = ("chat_gpt", "claude", "gemini", "perplexity")
# Perplexity has only `models` and `live` (task_post, tasks_ready and task_get answer 404).
LIVE_ONLY_PROVIDERS = frozenset({"perplexity"})


@dataclass(frozen=True)
class CatalogModel:
    base_name: str
    dated_name: str
    reasoning: bool
    web_search_supported: bool
    task_post_supported: bool
    input_price: Decimal  # USD per million input tokens
    output_price: Decimal  # USD per million output (and reasoning) tokens

    def listing(self, model_name: str) -> dict:
        """One row of the `models` endpoint's result."""
        return {
            "model_name": model_name,
            "reasoning": self.reasoning,
            "web_search_supported": self.web_search_supported,
            "task_post_supported": self.task_post_supported,
        }


def _model(base, dated, *, reasoning, web_search, task_post=True, prices=("0", "0")) -> CatalogModel:
    return CatalogModel(base, dated, reasoning, web_search, task_post, Decimal(prices[0]), Decimal(prices[1]))


CATALOG: dict[str, tuple[CatalogModel, ...]] = {
    "chat_gpt": (
        _model("gpt-4.1", "gpt-4.1-2025-04-14", reasoning=False, web_search=True, prices=("2.00", "8.00")),
        _model(
            "gpt-4.1-mini",
            "gpt-4.1-mini-2025-04-14",
            reasoning=False,
            web_search=True,
            prices=("0.40", "1.60"),
        ),
        _model(
            "gpt-4o-mini",
            "gpt-4o-mini-2024-07-18",
            reasoning=False,
            web_search=False,
            prices=("0.15", "0.60"),
        ),
        _model("o3-mini", "o3-mini-2025-01-31", reasoning=True, web_search=True, prices=("1.10", "4.40")),
        _model("o1", "o1-2024-12-17", reasoning=True, web_search=False, prices=("15.00", "60.00")),
        _model(
            "o1-pro",
            "o1-pro-2025-03-19",
            reasoning=True,
            web_search=False,
            task_post=False,
            prices=("150.00", "600.00"),
        ),
    ),
    "claude": (
        _model(
            "claude-sonnet-4-5",
            "claude-sonnet-4-5-20250929",
            reasoning=True,
            web_search=True,
            prices=("3.00", "15.00"),
        ),
        _model(
            "claude-3-5-haiku",
            "claude-3-5-haiku-20241022",
            reasoning=False,
            web_search=True,
            prices=("0.80", "4.00"),
        ),
        _model(
            "claude-opus-4-1",
            "claude-opus-4-1-20250805",
            reasoning=True,
            web_search=True,
            task_post=False,
            prices=("15.00", "75.00"),
        ),
    ),
    # Whether Gemini can be queued is unconfirmed upstream (api-reference §2): the stand-in lists one
    # model that can, so both answers are exercised; the product follows whatever `models` says.
    "gemini": (
        _model(
            "gemini-2.5-pro",
            "gemini-2.5-pro-preview-06-05",
            reasoning=True,
            web_search=True,
            task_post=False,
            prices=("1.25", "10.00"),
        ),
        _model(
            "gemini-2.5-flash",
            "gemini-2.5-flash-preview-05-20",
            reasoning=True,
            web_search=True,
            prices=("0.30", "2.50"),
        ),
        _model(
            "gemini-2.0-flash-lite",
            "gemini-2.0-flash-lite-001",
            reasoning=False,
            web_search=False,
            task_post=False,
            prices=("0.075", "0.30"),
        ),
    ),
    "perplexity": (
        _model(
            "sonar", "sonar-2025-02-19", reasoning=False, web_search=True, task_post=False, prices=("1", "1")
        ),
        _model(
            "sonar-pro",
            "sonar-pro-2025-02-19",
            reasoning=False,
            web_search=True,
            task_post=False,
            prices=("3", "15"),
        ),
        _model(
            "sonar-reasoning",
            "sonar-reasoning-2025-02-19",
            reasoning=True,
            web_search=True,
            task_post=False,
            prices=("1", "5"),
        ),
        _model(
            "r1-1776",
            "r1-1776-2025-02-18",
            reasoning=True,
            web_search=False,
            task_post=False,
            prices=("2", "8"),
        ),
    ),
}

# What a web search adds to money_spent, per search (the providers bill searches on top of tokens).
WEB_SEARCH_FEE = Decimal("0.01")


def find_model(provider: str, model_name: object) -> CatalogModel | None:
    """The catalog entry for a base or dated model name, or None when the provider has no such model."""
    if not isinstance(model_name, str):
        return None
    for model in CATALOG.get(provider, ()):
        if model_name in (model.base_name, model.dated_name):
            return model
    return None


def listing(provider: str) -> list[dict]:
    """The `models` endpoint's result: every accepted name, base names first, then the dated versions."""
    models = CATALOG[provider]
    return [m.listing(m.base_name) for m in models] + [m.listing(m.dated_name) for m in models]
