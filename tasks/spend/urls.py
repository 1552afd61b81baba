from django.urls import path

from tasks.spend import views

app_name = "spend"
urlpatterns = [
    path("spend/", views.spend_page, name="page"),
    path("spend/export.csv", views.spend_export, name="export"),
    path("spend/balance/", views.balance, name="balance"),
    path("budgets/", views.budget_list, name="budget_list"),
    path("budgets/new/", views.budget_edit, name="budget_create"),
    path("budgets/<int:pk>/", views.budget_edit, name="budget_edit"),
    path("budgets/<int:pk>/delete/", views.budget_remove, name="budget_delete"),
]
