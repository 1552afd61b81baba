from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView

from tasks.team import account_views

urlpatterns = [
    # Browsers ask for /favicon.ico on pages that name no icon (Django's own admin pages, raw responses).
    # The URL is resolved per request: in production it needs the collected static files' manifest.
    path(
        "favicon.ico",
        login_not_required(RedirectView.as_view(url=lazy(static, str)("img/favicon.svg"), permanent=True)),
        name="favicon",
    ),
    path("admin/", admin.site.urls),
    # The product's login, logout and password-change pages. Not Django's password reset by email: an Admin
    # gives a forgotten password's owner a one-time password (People).
    *account_views.urlpatterns,
    path("", include("tasks.urls")),
]

if settings.SANDBOX_ENABLED:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
