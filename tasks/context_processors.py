from django.conf import settings
from django.utils.functional import SimpleLazyObject


def budget_warnings(request) -> dict:
    """Budgets at or over their warning threshold this month, for the banner on every page.

    Lazy: computed (in two queries) only when a full page renders the banner, never for fragments.
    """
    user = getattr(request, "user", None)
    if not (user and user.is_authenticated):
        return {"budget_warnings": []}

    def warnings() -> list[str]:
        from tasks.spend.budgets import budget_warnings as current_warnings

        return current_warnings()

    return {"budget_warnings": SimpleLazyObject(warnings)}


def navigation(request):
    """What the page chrome needs on every page (and the budget warnings for the banner)."""
    user = getattr(request, "user", None)
    return {
        "is_admin": bool(user and user.is_authenticated and user.has_perm("tasks.view_spend")),
        "sandbox_enabled": settings.SANDBOX_ENABLED,
        **budget_warnings(request),
    }
