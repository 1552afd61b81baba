from django.urls import path

from tasks.team import views

app_name = "team"
urlpatterns = [
    path("credentials/", views.credential_list, name="credential_list"),
    path("credentials/new/", views.credential_add, name="credential_add"),
    path("credentials/<int:pk>/", views.credential_edit, name="credential_edit"),
    path("credentials/<int:pk>/secret/", views.credential_edit, name="credential_replace"),
    path("credentials/<int:pk>/verify/", views.credential_verify, name="credential_verify"),
    path("credentials/<int:pk>/default/", views.credential_default, name="credential_default"),
    path("credentials/<int:pk>/disable/", views.credential_disable_view, name="credential_disable"),
    path("people/", views.people_page, name="people"),
    path("people/new/", views.person_create, name="person_create"),
    path("people/<int:pk>/role/", views.person_role, name="person_role"),
    path("people/<int:pk>/active/", views.person_active, name="person_active"),
    path("people/<int:pk>/password/", views.person_password, name="person_password"),
    path("people/<int:pk>/unlock/", views.person_unlock, name="person_unlock"),
    path("people/address-unlock/", views.address_unlock, name="address_unlock"),
    path("audit/", views.audit_log, name="audit_log"),
]
