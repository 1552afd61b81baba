from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "LLM Responses tasks"

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_in
        from django.db.models.signals import post_migrate, post_save, pre_save

        from tasks.roles import ensure_roles_after_migrate
        from tasks.team.accounts import clear_one_time_password_on_change, mark_change_required
        from tasks.team.people import refuse_username_taken

        user_logged_in.connect(mark_change_required, dispatch_uid="tasks.one_time_password_login")
        post_save.connect(
            clear_one_time_password_on_change,
            sender=get_user_model(),
            dispatch_uid="tasks.one_time_password_cleared",
        )

        pre_save.connect(
            refuse_username_taken, sender=get_user_model(), dispatch_uid="tasks.username_taken_in_any_case"
        )

        # After auth's own post_migrate handler has created the permissions (apps are in order).
        post_migrate.connect(ensure_roles_after_migrate, sender=self)
