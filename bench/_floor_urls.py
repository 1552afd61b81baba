"""The site's URLs plus two floors for the benchmarks: an empty view and the page chrome alone.

`/__floor__/empty/` answers a plain response through the whole middleware stack (session, auth, CSP, htmx,
...): the least any page costs. `/__floor__/chrome/` renders base.html with an empty content block (the
navigation, the budget banner and the context processors). Mounted only by the benchmarks (ROOT_URLCONF).
"""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import include, path


@login_required
def empty(request):
    return HttpResponse("ok")


@login_required
def chrome(request):
    return render(request, "base.html", {})


urlpatterns = [
    path("__floor__/empty/", empty),
    path("__floor__/chrome/", chrome),
    path("", include("aisa_site.urls")),
]
