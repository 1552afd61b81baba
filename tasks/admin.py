"""Django admin: tasks read-only (with a CSV export), credentials without their secret, templates,
budgets (audited), the audit log (read-only), and users whose names are unique in any case."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from tasks.csv_export import csv_response, money
from tasks.models import AuditEntry, Budget, Credential, PromptTemplate, PromptTemplateVersion, Task
from tasks.spend.budgets import budget_delete, budget_snapshot
from tasks.team.audit import audit_change_lines, audit_changes, audit_record
from tasks.team.people import username_taken
from tasks.templatetags.task_tags import pretty_json

TASK_CSV_FIELDS = [
    "id",
    "created_at",
    "provider",
    "mode",
    "model_name",
    "resolved_model_name",
    "status",
    "status_code",
    "tag",
    "submitted_by",
    "credential",
    "estimated_charge",
    "charged",
    "cost",
    "spend",
    "spend_is_final",
    "upstream_task_id",
]


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


MONEY_CSV_FIELDS = {"estimated_charge", "charged", "cost", "spend"}


def _task_csv_row(task: Task) -> list:
    row = []
    for name in TASK_CSV_FIELDS:
        value = getattr(task, name)
        if name == "submitted_by":
            value = value.get_username() if value else ""
        elif name == "credential":
            value = value.name
        elif name in MONEY_CSV_FIELDS:
            value = money(value)
        row.append(value)
    return row


@admin.action(description="Export the selected tasks as CSV", permissions=["view"])
def export_tasks_csv(modeladmin, request, queryset):
    tasks = queryset.select_related("submitted_by", "credential").order_by("-created_at").iterator()
    return csv_response(
        filename="tasks.csv", header=TASK_CSV_FIELDS, rows=(_task_csv_row(task) for task in tasks)
    )


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "provider",
        "model_name",
        "status",
        "spend",
        "spend_is_final",
        "tag",
        "person",
    ]
    list_filter = ["status", "provider", "mode", "spend_is_final", "credential", "model_name"]
    list_select_related = ["submitted_by", "credential"]
    search_fields = ["user_prompt", "tag", "model_name", "upstream_task_id", "submitted_by__username"]
    date_hierarchy = "created_at"
    show_full_result_count = False  # counting a million rows on every page view is slow
    actions = [export_tasks_csv]
    list_per_page = 50
    # The request is shown with its callback token masked, as on the task page.
    exclude = ["result", "request_body"]
    readonly_fields = ["request_as_sent"]

    @admin.display(description="Request as sent")
    def request_as_sent(self, task):
        return format_html("<pre>{}</pre>", pretty_json(task.request_body))

    @admin.display(description="Person", ordering="submitted_by__username")
    def person(self, task):
        return task.submitted_by.get_username() if task.submitted_by else "—"


@admin.register(Credential)
class CredentialAdmin(ReadOnlyAdmin):
    """View only: adding, replacing secrets and disabling happen on the Credentials page (audited)."""

    list_display = ["name", "kind", "secret_ending", "is_default", "is_active", "last_verified_at", "manage"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "login"]
    exclude = ["secret_encrypted"]
    readonly_fields = ["secret_ending", "secret_fingerprint"]

    @admin.display(description="Secret")
    def secret_ending(self, credential):
        return credential.secret_ending or "(8 characters or fewer: not shown)"

    @admin.display(description="")
    def manage(self, credential):
        return format_html('<a href="{}">Manage</a>', reverse("team:credential_edit", args=[credential.pk]))


class PromptTemplateVersionInline(admin.TabularInline):
    model = PromptTemplateVersion
    extra = 0
    fields = ["number", "note", "created_by", "created_at"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "provider", "created_by", "updated_at", "archived_at"]
    list_filter = ["provider", "archived_at"]
    search_fields = ["name", "description"]
    readonly_fields = ["created_by", "created_at", "updated_at"]
    inlines = [PromptTemplateVersionInline]


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    list_display = ["__str__", "scope", "user", "tag", "monthly_limit", "warn_ratio", "is_active"]
    list_filter = ["scope", "is_active"]
    search_fields = ["tag", "user__username"]
    readonly_fields = ["created_by", "created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        before = budget_snapshot(Budget.objects.get(pk=obj.pk)) if change else {}
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        after = budget_snapshot(obj)
        changes = audit_changes(before, after) if change else after
        if changes:  # as on the budgets page: only a change that happened is recorded
            action = "budget.update" if change else "budget.create"
            audit_record(actor=request.user, action=action, obj=obj, changes=changes)

    def delete_model(self, request, obj):
        budget_delete(actor=request.user, budget=obj)

    def delete_queryset(self, request, queryset):
        for budget in queryset:
            self.delete_model(request, budget)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor", "action", "object_type", "object_repr"]
    list_filter = ["action", "object_type"]
    search_fields = ["object_repr", "actor__username", "action"]
    date_hierarchy = "created_at"
    list_select_related = ["actor"]
    fields = ["created_at", "actor", "action", "object_type", "object_id", "object_repr", "change_list"]
    readonly_fields = fields

    @admin.display(description="Changes")
    def change_list(self, entry):
        return format_html_join(mark_safe("<br>"), "{}: {}", audit_change_lines(entry)) or "—"


class PersonChangeForm(UserChangeForm):
    """Django's user form, refusing a new name someone else has in another case (its add form does
    already); an unchanged one passes, so two older accounts "Bob" and "bob" can still be edited."""

    def clean_username(self):
        username = self.cleaned_data.get("username")
        changed = username != self.instance.get_username()  # the instance still holds the stored name
        if username and changed and username_taken(username, exclude_pk=self.instance.pk):
            raise self.instance.unique_error_message(type(self.instance), ["username"])
        return username


class PersonAdmin(UserAdmin):
    form = PersonChangeForm


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), PersonAdmin)
