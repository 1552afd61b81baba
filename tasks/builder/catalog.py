"""The models catalog: fetched from the free `models` endpoint and stored as ProviderModel rows."""

from django.utils import timezone

from tasks.crypto import CredentialKeyError
from tasks.models import Credential, Provider, ProviderModel
from tasks.upstream.clients import client_for
from tasks.upstream.outcomes import UpstreamError, UpstreamMalformed


class CatalogRefreshFailed(Exception):
    """Some providers' catalogs could not be refreshed (the others were); the message names them."""


def catalog_refresh_every_provider(*, credential: Credential) -> dict[str, list[ProviderModel] | Exception]:
    """Refresh each provider's catalog on its own: one that fails (its error kept as its value) leaves the
    others refreshed. Returns, per provider, its listed models or the error that stopped its refresh."""
    refreshed: dict[str, list[ProviderModel] | Exception] = {}
    for provider in Provider.values:
        try:
            refreshed[provider] = catalog_refresh(credential=credential, provider=provider)
        except (UpstreamError, CredentialKeyError) as exc:
            refreshed[provider] = exc
    return refreshed


def catalog_failures(refreshed: dict[str, list[ProviderModel] | Exception]) -> str:
    """The providers whose refresh failed, with why ("" when none did)."""
    failed = [(provider, got) for provider, got in refreshed.items() if isinstance(got, Exception)]
    return "; ".join(f"{provider}: {error}" for provider, error in failed)


def catalog_refresh(*, credential: Credential, provider: str) -> list[ProviderModel]:
    """Fetch the free `models` list and store it; models no longer listed are kept but marked.

    A name the catalog cannot hold (over 100 characters, blank, with spaces) is left out. A reply that
    lists no model at all is not believed (UpstreamMalformed): marking the whole catalog unlisted would
    leave nothing to choose until the next fetch."""
    with client_for(credential) as client:
        models = [info for info in client.models(provider) if _is_usable_name(info.model_name)]
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


MODEL_NAME_MAX = ProviderModel._meta.get_field("model_name").max_length


def _is_usable_name(name: str) -> bool:
    """A name the catalog can hold and a task can send as it is: 1–100 printable characters, no spaces."""
    return 0 < len(name) <= MODEL_NAME_MAX and all(char.isprintable() and not char.isspace() for char in name)
