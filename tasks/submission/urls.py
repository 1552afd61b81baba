from django.urls import path

from tasks.submission import views

app_name = "submission"
urlpatterns = [
    path("callbacks/<uuid:task_id>/<str:token>/pingback/", views.pingback, name="callback_pingback"),
    path("callbacks/<uuid:task_id>/<str:token>/postback/", views.postback, name="callback_postback"),
    path("queue/", views.sending_queue, name="queue"),
]
