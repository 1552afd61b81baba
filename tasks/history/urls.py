from django.urls import path, register_converter

from tasks.history import views
from tasks.history.converters import TagConverter

register_converter(TagConverter, "tag")

app_name = "history"
urlpatterns = [
    path("", views.home, name="home"),
    path("tasks/", views.task_list, name="task_list"),
    path("tasks/export.<str:fmt>", views.task_export, name="task_export"),
    path("tasks/<uuid:task_id>/", views.task_detail, name="task_detail"),
    path("tasks/<uuid:task_id>/status/", views.task_status, name="task_status"),
    path("tasks/<uuid:task_id>/refresh/", views.task_refresh, name="task_refresh"),
    path("tasks/<uuid:task_id>/edit/", views.task_edit, name="task_edit"),
    path("tasks/<uuid:task_id>/resolve/", views.task_resolve, name="task_resolve"),
    path("tags/", views.tag_list, name="tag_list"),
    path("tags/<tag:tag>/", views.tag_detail, name="tag_detail"),
]
