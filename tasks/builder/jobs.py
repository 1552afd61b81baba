"""Background jobs of the builder (django.tasks); they take ids and are safe to run twice."""

from django.tasks import task

from tasks.builder.catalog import catalog_refresh
from tasks.models import Credential, Provider


@task
def refresh_model_catalog(credential_id: int) -> None:
    """Refresh every provider's model list with a credential (the `models` endpoint is free)."""
    credential = Credential.objects.filter(pk=credential_id, is_active=True).first()
    if credential is None:
        return
    for provider in Provider.values:
        catalog_refresh(credential=credential, provider=provider)
