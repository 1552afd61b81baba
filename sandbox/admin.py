from django.contrib import admin

from sandbox.models import SandboxFault, SandboxRequest, SandboxTask


@admin.register(SandboxTask)
class SandboxTaskAdmin(admin.ModelAdmin):
    list_display = ["id", "provider", "mode", "account", "cost", "created_at", "ready_at", "fetched_at"]
    list_filter = ["provider", "mode"]
    search_fields = ["id", "account"]
    readonly_fields = [f.name for f in SandboxTask._meta.fields]


@admin.register(SandboxFault)
class SandboxFaultAdmin(admin.ModelAdmin):
    list_display = [
        "mode",
        "function",
        "provider",
        "remaining",
        "seconds",
        "retry_after",
        "status_code",
        "prompt_contains",
        "position",
        "created_at",
    ]


@admin.register(SandboxRequest)
class SandboxRequestAdmin(admin.ModelAdmin):
    list_display = ["created_at", "method", "path", "account", "http_status", "tasks_in_body", "fault"]
    list_filter = ["route", "function", "http_status"]
    readonly_fields = [f.name for f in SandboxRequest._meta.fields]
