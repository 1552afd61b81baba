"""The two roles, as Django groups. Views check permissions, never group names."""

MEMBERS = "Members"
ADMINS = "Admins"

# codename lists per role, all in the `tasks` app.
MEMBER_PERMISSIONS = [
    "add_task",
    "view_task",
    "change_task",  # local labels and note
    "view_taskevent",
    "add_tasklabel",
    "delete_tasklabel",
    "view_tasklabel",
    "add_prompttemplate",
    "change_prompttemplate",
    "view_prompttemplate",
    "add_prompttemplateversion",
    "view_prompttemplateversion",
    "add_batch",
    "view_batch",
    "view_providermodel",
    "view_credential",  # to pick one in the builder; secrets are never shown
    # Visibility (tasks/visibility/): brand sets are the team's shared setup, like templates.
    "view_brandset",
    "add_brandset",
    "change_brandset",
    "delete_brandset",
    # Monitors (docs/monitors.md): members create and run them; budgets' alerts stay with admins.
    "view_monitor",
    "add_monitor",
    "change_monitor",
]
ADMIN_PERMISSIONS = [
    *MEMBER_PERMISSIONS,
    "view_spend",
    "manage_budgets",
    "manage_credentials",
    "manage_people",
    "view_audit",
    "resolve_task",
    "add_credential",
    "change_credential",
    "add_budget",
    "change_budget",
    "delete_budget",
    "view_budget",
    "view_auditentry",
    "change_providermodel",
    "add_providermodel",
]


def ensure_roles(*, group_model, permission_model) -> None:
    """Create the two groups with their permissions; idempotent. Run by the 0002 migration and after
    every migrate/flush (post_migrate), so the roles also survive test-database flushes."""
    for name, codenames in ((MEMBERS, MEMBER_PERMISSIONS), (ADMINS, ADMIN_PERMISSIONS)):
        group, _ = group_model.objects.get_or_create(name=name)
        perms = permission_model.objects.filter(content_type__app_label="tasks", codename__in=codenames)
        group.permissions.add(*perms)


def ensure_roles_after_migrate(sender, **kwargs) -> None:
    from django.contrib.auth.models import Group, Permission

    ensure_roles(group_model=Group, permission_model=Permission)
