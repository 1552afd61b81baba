from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from tasks.views import account

urlpatterns = [
    path("admin/", admin.site.urls),
    *account.urlpatterns,  # the product's login and password-change pages, before Django's own
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("tasks.urls")),
]

if settings.SANDBOX_ENABLED:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
