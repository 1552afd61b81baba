from functools import lru_cache

from django.conf import settings
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
from django.utils.functional import SimpleLazyObject
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

# The main navigation, in order: (label, URL name, permissions the link needs). A link whose URL does not
# resolve (an area not mounted) is left out.
ADMIN = "tasks.view_spend"
NAV_LINKS = (
    ("New task", "builder:new", ()),
    ("Tasks", "history:task_list", ()),
    ("Templates", "prompt_templates:list", ()),
    ("Batches", "prompt_templates:batch_list", ("tasks.view_batch",)),
    ("Monitors", "monitors:list", ("tasks.view_monitor",)),
    ("Tags", "history:tag_list", ()),
    ("Visibility", "visibility:set_list", ("tasks.view_brandset",)),
    ("Spend", "spend:page", (ADMIN,)),
    ("Budgets", "spend:budget_list", (ADMIN,)),
    ("Credentials", "team:credential_list", (ADMIN,)),
    ("People", "team:people", (ADMIN,)),
    ("Audit log", "team:audit_log", (ADMIN,)),
    ("Queue", "submission:queue", (ADMIN, "tasks.manage_credentials")),
    ("Alerts", "monitors:alert_list", (ADMIN, "tasks.manage_budgets")),
)
NAV_PERMISSIONS = tuple(sorted({perm for _label, _name, perms in NAV_LINKS for perm in perms}))


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


@lru_cache(maxsize=64)
def _nav_links(granted: frozenset[str], urlconf: str, script_prefix: str) -> SafeString:
    """The navigation's links for one set of permissions, built once per process: the chrome's ~14
    `{% url %}` and permission tests cost ~0.4 ms a page (docs/performance.md). The URLs do not change
    while the process runs; `urlconf` and `script_prefix` are in the key because reverse() depends on them.
    """
    links = []
    for label, name, needs in NAV_LINKS:
        if not granted.issuperset(needs):
            continue
        try:
            links.append((reverse(name, urlconf=urlconf), label))
        except NoReverseMatch:
            continue
    return format_html_join("\n      ", '<a href="{}">{}</a>', links)


def navigation(request):
    """What the page chrome needs on every page: the navigation's links (the permissions they need are
    read once per request, from the permissions Django caches on the user) and the budget warnings."""
    user = getattr(request, "user", None)
    signed_in = bool(user and user.is_authenticated)
    granted = frozenset(perm for perm in NAV_PERMISSIONS if signed_in and user.has_perm(perm))
    return {
        "nav_links": _nav_links(granted, get_urlconf() or settings.ROOT_URLCONF, get_script_prefix())
        if signed_in
        else "",
        **budget_warnings(request),
    }
