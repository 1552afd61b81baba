from django.urls import path

from tasks.monitors import views

app_name = "monitors"
urlpatterns = [
    path("monitors/", views.monitor_list, name="list"),
    path("monitors/new/", views.monitor_edit, name="create"),
    path("monitors/from-request/", views.monitor_from_request, name="from_request"),
    path("monitors/estimate/", views.monitor_estimate_view, name="estimate"),
    path("monitors/<slug:slug>/", views.monitor_detail, name="detail"),
    path("monitors/<slug:slug>/edit/", views.monitor_edit, name="edit"),
    path("monitors/<slug:slug>/state/", views.monitor_state, name="state"),
    path("monitors/<slug:slug>/run/", views.monitor_run_now, name="run_now"),
    path("monitors/<slug:slug>/runs/<uuid:run_id>/retry/", views.monitor_run_retry, name="run_retry"),
    path("monitors/<slug:slug>/destinations/", views.monitor_destination_add, name="destination_add"),
    path("monitors/<slug:slug>/visibility/", views.monitor_visibility, name="visibility"),
    path("monitors/<slug:slug>/brand-sets/", views.monitor_brand_set_attach, name="brand_set_attach"),
    path("alerts/", views.alert_list, name="alert_list"),
    path("alerts/destinations/<int:destination_id>/test/", views.destination_test, name="destination_test"),
    path(
        "alerts/destinations/<int:destination_id>/kinds/", views.destination_kinds, name="destination_kinds"
    ),
    path(
        "alerts/destinations/<int:destination_id>/delete/",
        views.destination_remove,
        name="destination_delete",
    ),
]
