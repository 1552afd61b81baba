"""The sending queue, for admins: what waits, what is in flight, which workers are alive."""

from django.contrib.auth.decorators import permission_required
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from tasks.submission.queue import queue_state

PAGE = "tasks/submission/queue.html"


@permission_required("tasks.manage_credentials", raise_exception=True)
@require_GET
def sending_queue(request):
    """Chunks waiting, sending, rate-limited and lost; workers seen in the last minute; the oldest
    waiting chunk. Polled every 5 s (the `live` partial)."""
    template = f"{PAGE}#live" if request.htmx else PAGE
    return render(request, template, {"queue": queue_state()})


urlpatterns = [path("queue/", sending_queue, name="sending_queue")]
