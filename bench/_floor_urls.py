"""The site's URLs plus three floors for the benchmarks: an empty view, the page chrome alone, and the task
list's data alone.

`/__floor__/empty/` answers a plain response through the whole middleware stack (session, auth, CSP, htmx,
...): the least any page costs. `/__floor__/chrome/` renders base.html with an empty content block (the
navigation, the budget banner and the context processors). `/__floor__/list-data/` runs the task list's
selector (the capped count, the 50 rows, their labels: the list page's own queries through the ORM) and
answers the rows' ids as plain text, with no template and no filter form: what the list costs before any
HTML. Mounted only by the benchmarks (ROOT_URLCONF).
"""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import include, path

from tasks.history.selectors import task_list


@login_required
def empty(request):
    return HttpResponse("ok")


@login_required
def chrome(request):
    return render(request, "base.html", {})


@login_required
def list_data(request):
    page = task_list(filters={}, sort="-created")
    return HttpResponse("\n".join(str(row.pk) for row in page.tasks), content_type="text/plain")


urlpatterns = [
    path("__floor__/empty/", empty),
    path("__floor__/chrome/", chrome),
    path("__floor__/list-data/", list_data),
    path("", include("aisa_site.urls")),
]
