"""The models catalog: fetched from the free `models` endpoint and stored as ProviderModel rows."""

from django.utils import timezone

from tasks.models import Credential, ProviderModel
from tasks.upstream.clients import client_for


def catalog_refresh(*, credential: Credential, provider: str) -> list[ProviderModel]:
    """Fetch the free `models` list and store it; models no longer listed are kept but marked."""
    models = client_for(credential).models(provider)
    now = timezone.now()
    seen = []
    for info in models:
        ProviderModel.objects.update_or_create(
            provider=provider,
            model_name=info.model_name,
            defaults={
                "reasoning": info.reasoning,
                "web_search_supported": info.web_search_supported,
                "task_post_supported": info.task_post_supported,
                "is_listed": True,
                "fetched_at": now,
            },
        )
        seen.append(info.model_name)
    ProviderModel.objects.filter(provider=provider).exclude(model_name__in=seen).update(is_listed=False)
    return list(ProviderModel.objects.filter(provider=provider, is_listed=True))
