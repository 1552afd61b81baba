from django.urls import path

import tasks.history.urls  # noqa: F401 - registers the `tag` path converter
from tasks.visibility import views

app_name = "visibility"
urlpatterns = [
    path("visibility/", views.set_list, name="set_list"),
    path("visibility/sets/new/", views.set_edit, name="set_create"),
    path("visibility/sets/<int:set_id>/", views.set_page, name="set_page"),
    path("visibility/sets/<int:set_id>/export.csv", views.set_export, name="set_export"),
    path("visibility/sets/<int:set_id>/edit/", views.set_edit, name="set_edit"),
    path("visibility/sets/<int:set_id>/delete/", views.set_delete, name="set_delete"),
    path("visibility/sets/<int:set_id>/test/", views.set_test, name="set_test"),
    path("visibility/sets/<int:set_id>/answers/", views.answers, name="answers"),
    path("visibility/sets/<int:set_id>/brands/new/", views.brand_edit, name="brand_create"),
    path("visibility/sets/<int:set_id>/brands/<int:brand_id>/", views.brand_edit, name="brand_edit"),
    path(
        "visibility/sets/<int:set_id>/brands/<int:brand_id>/delete/", views.brand_remove, name="brand_delete"
    ),
    path("visibility/tags/<tag:tag>/", views.tag_page, name="tag_page"),
    path("visibility/tags/<tag:tag>/export.csv", views.tag_export, name="tag_export"),
]
