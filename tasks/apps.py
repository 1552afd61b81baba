from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "LLM Responses tasks"

    def ready(self):
        from django.db.models.signals import post_migrate

        from tasks.roles import ensure_roles_after_migrate

        # After auth's own post_migrate handler has created the permissions (apps are in order).
        post_migrate.connect(ensure_roles_after_migrate, sender=self)
