"""URLs of the product: one namespaced include per area (docs/architecture.md maps them)."""

from django.urls import include, path

urlpatterns = [
    path("", include("tasks.history.urls")),
    path("", include("tasks.builder.urls")),
    path("", include("tasks.prompt_templates.urls")),
    path("", include("tasks.submission.urls")),
    path("", include("tasks.spend.urls")),
    path("", include("tasks.team.urls")),
    path("", include("tasks.visibility.urls")),
    path("", include("tasks.monitors.urls")),
]
