"""A monitor's old slugs (`MonitorSlugAlias`): renaming a monitor keeps its old addresses working, as GitHub
does for a renamed repository.

The rule: a slug names the monitor whose current slug it is; failing that, the last monitor that had it
before a rename. A new monitor (or a rename) may take a slug that is another monitor's old one: the old one's
alias is then removed. Deleting a monitor frees its old slugs with it.
"""

import functools

from django.contrib import messages
from django.http import Http404, HttpResponsePermanentRedirect
from django.urls import reverse

from tasks.models import Monitor, MonitorSlugAlias


def slug_taken(*, monitor: Monitor, before: str | None) -> None:
    """Record `monitor`'s new slug (in the transaction that saves it): the slug it leaves (`before`) leads to
    it from now on, and the one it takes is nobody's old slug any more."""
    MonitorSlugAlias.objects.filter(slug=monitor.slug).delete()
    if before and before != monitor.slug:
        MonitorSlugAlias.objects.update_or_create(slug=before, defaults={"monitor": monitor})


class MonitorRenamed(Exception):
    """The slug asked for is an old one of the monitor now named `name`, at `slug`."""

    def __init__(self, slug: str, name: str):
        super().__init__(slug)
        self.slug, self.name = slug, name


def monitor_or_404(slug: str, queryset=None) -> Monitor:
    """The monitor at `slug`; `MonitorRenamed` when it is an old slug of one (`follows_renames` answers)."""
    monitor = (queryset if queryset is not None else Monitor.objects).filter(slug=slug).first()
    if monitor is not None:
        return monitor
    current = MonitorSlugAlias.objects.filter(slug=slug).values_list("monitor__slug", "monitor__name").first()
    if current is not None:
        raise MonitorRenamed(*current)
    raise Http404("No such monitor.")


def follows_renames(view):
    """A monitor view reached by an old slug: a GET is sent to the same page under the current slug (301,
    query string kept); a POST is never redirected (its body would be lost): the view runs again under the
    current slug, acting on the monitor and answering as there. The view looks its monitor up with
    `monitor_or_404` before it changes anything, so the first call has done nothing."""

    @functools.wraps(view)
    def wrapped(request, slug: str | None = None, **kwargs):
        try:
            return view(request, slug=slug, **kwargs)
        except MonitorRenamed as renamed:
            current, name = renamed.slug, renamed.name
        if request.method in ("GET", "HEAD"):
            match = request.resolver_match
            url = reverse(match.view_name, kwargs={**match.kwargs, "slug": current})
            query = request.META.get("QUERY_STRING", "")
            return HttpResponsePermanentRedirect(f"{url}?{query}" if query else url)
        messages.info(
            request, f"This monitor was renamed “{name}” since that page was opened; this is its address now."
        )
        return view(request, slug=current, **kwargs)

    return wrapped
