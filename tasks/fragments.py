"""The one rule for when a view renders a fragment instead of its whole page."""

from django.http import HttpRequest


def wants_fragment(request: HttpRequest) -> bool:
    """An htmx request gets its fragment; a history restore (the back button after htmx pushed a URL)
    needs the whole page, and so does a request without htmx."""
    return bool(request.htmx) and not request.htmx.history_restore_request
