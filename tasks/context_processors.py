from django.conf import settings


def navigation(request):
    """What the page chrome needs on every page."""
    user = getattr(request, "user", None)
    return {
        "is_admin": bool(user and user.is_authenticated and user.has_perm("tasks.view_spend")),
        "sandbox_enabled": settings.SANDBOX_ENABLED,
    }
