from django.urls import path

from tasks.prompt_templates import views

app_name = "prompt_templates"
urlpatterns = [
    path("templates/", views.template_list, name="list"),
    path("templates/save/", views.template_save, name="save"),
    path("templates/<int:template_id>/", views.template_detail, name="detail"),
    path("templates/<int:template_id>/versions/<int:version_id>/", views.template_detail, name="version"),
    path("templates/<int:template_id>/rename/", views.template_rename_view, name="rename"),
    path("templates/<int:template_id>/duplicate/", views.template_duplicate_view, name="duplicate"),
    path("templates/<int:template_id>/archive/", views.template_archive_view, name="archive"),
    path("templates/<int:template_id>/batch/", views.batch_new, name="batch_new"),
    path("batches/", views.batch_list, name="batch_list"),
    path("batches/<uuid:batch_id>/", views.batch_detail, name="batch_detail"),
]
