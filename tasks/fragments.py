"""The one rule for when a view renders a fragment instead of its whole page."""

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.cache import patch_vary_headers


def wants_fragment(request: HttpRequest) -> bool:
    """An htmx request gets its fragment; a history restore (the back button after htmx pushed a URL)
    needs the whole page, and so does a request without htmx."""
    return bool(request.htmx) and not request.htmx.history_restore_request


class VaryOnHtmxMiddleware:
    """Every page may answer an htmx request with a fragment of itself (`wants_fragment`), so every
    response says it varies on HX-Request: a browser that fetched a URL with htmx never shows that fragment
    as the whole page when the person comes back to the URL (the back button, a reopened tab)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        patch_vary_headers(response, ("HX-Request",))
        return response
