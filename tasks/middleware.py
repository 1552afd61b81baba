"""A guard against NUL characters in what a request carries.

No field of the product accepts a NUL (U+0000), and PostgreSQL cannot even compare a text column with
one: a NUL reaching a query is a 500 there. This middleware answers 400 with a plain page for a NUL in
the path, the query string (keys or values) or a posted form (keys, values or upload names), before any
view runs. Forms refuse a NUL at the field as well (Django's ProhibitNullCharactersValidator), for
inputs this guard leaves to the view.

Posted forms are read in `process_view`, and only for views that are not `csrf_exempt`: Django's CSRF
check reads those forms before the view anyway, so this adds no parse and takes nothing from a view
that reads its own body (the upstream's callbacks, or a view that sets its own upload handlers).
"""

from django.http import HttpRequest, HttpResponseBadRequest

NUL = "\x00"
REFUSAL = "Bad request: it contains a NUL character (U+0000), which no field of this site accepts.\n"


def _has_nul(pairs) -> bool:
    return any(NUL in key or any(NUL in str(value) for value in values) for key, values in pairs)


def _refused() -> HttpResponseBadRequest:
    return HttpResponseBadRequest(REFUSAL, content_type="text/plain; charset=utf-8")


class RefuseNulMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if NUL in request.path_info or NUL in request.path or _has_nul(request.GET.lists()):
            return _refused()
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        if request.method != "POST" or getattr(view_func, "csrf_exempt", False):
            return None
        if _has_nul(request.POST.lists()):
            return _refused()
        names = ((key, [upload.name for upload in uploads]) for key, uploads in request.FILES.lists())
        if _has_nul(names):
            return _refused()
        return None
