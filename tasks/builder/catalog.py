"""The models catalog: fetched from the free `models` endpoint and stored as ProviderModel rows."""

from django.utils import timezone

from tasks.models import Credential, ProviderModel
from tasks.upstream.clients import client_for
from tasks.upstream.outcomes import UpstreamMalformed


def catalog_refresh(*, credential: Credential, provider: str) -> list[ProviderModel]:
    """Fetch the free `models` list and store it; models no longer listed are kept but marked.

    A reply that lists no model at all is not believed (UpstreamMalformed): marking the whole catalog
    unlisted would leave nothing to choose until the next fetch."""
    with client_for(credential) as client:
        models = client.models(provider)
    if not models:
        raise UpstreamMalformed(
            f"{client.service_name} listed no {provider} models; the models fetched before are kept."
        )
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
