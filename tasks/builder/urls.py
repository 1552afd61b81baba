from django.urls import path

from tasks.builder import views

app_name = "builder"
urlpatterns = [
    path("new/", views.builder, name="new"),
    path("new/validate/", views.builder_validate, name="validate"),
    path("new/models/refresh/", views.builder_models_refresh, name="models_refresh"),
]
