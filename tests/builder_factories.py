"""Test data for the request builder: the stand-in's catalog as ProviderModel rows, and form data."""

from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from sandbox.catalog import CATALOG
from tasks.models import ProviderModel
from tasks.roles import MEMBER_PERMISSIONS, MEMBERS


def member_group() -> Group:
    """The Members role. Tests over live_server flush the database, so the migration's groups may be gone."""
    group, _ = Group.objects.get_or_create(name=MEMBERS)
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="tasks", codename__in=MEMBER_PERMISSIONS)
    )
    return group


def make_member(django_user_model, username: str = "builder-member"):
    user = django_user_model.objects.create_user(username=username, password="x")
    user.groups.add(member_group())
    return user


def make_catalog() -> None:
    """ProviderModel rows mirroring the stand-in's catalog (base names), as a `models` fetch would."""
    now = timezone.now()
    for provider, models in CATALOG.items():
        for model in models:
            ProviderModel.objects.update_or_create(
                provider=provider,
                model_name=model.base_name,
                defaults={
                    "reasoning": model.reasoning,
                    "web_search_supported": model.web_search_supported,
                    "task_post_supported": model.task_post_supported,
                    "fetched_at": now,
                },
            )


def form_data(provider: str, credential, **fields) -> dict:
    """Builder form data: the minimum valid task for `provider`, with `fields` on top (None removes one)."""
    data = {
        "provider": provider,
        "credential": str(credential.pk),
        "idempotency_key": fields.pop("idempotency_key", "key-" + provider),
        "user_prompt": "What is the capital of France?",
        "model_name": "gpt-4.1" if provider == "chat_gpt" else "claude-3-5-haiku",
    }
    for name, value in fields.items():
        if value is None:
            data.pop(name, None)
        elif value is True:
            data[name] = "on"
        else:
            data[name] = str(value)
    return data
