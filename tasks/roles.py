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
]
ADMIN_PERMISSIONS = [
    *MEMBER_PERMISSIONS,
    "view_spend",
    "manage_budgets",
    "manage_credentials",
    "manage_people",
    "view_audit",
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
