"""Background jobs of the builder (django.tasks); they take ids and are safe to run twice."""

from django.tasks import task

from tasks.builder.catalog import CatalogRefreshFailed, catalog_failures, catalog_refresh_every_provider
from tasks.models import Credential


@task
def refresh_model_catalog(credential_id: int) -> None:
    """Refresh every provider's model list with a credential (the `models` endpoint is free). A provider
    that fails leaves the others refreshed; the job then fails, naming it."""
    credential = Credential.objects.filter(pk=credential_id, is_active=True).first()
    if credential is None:
        return
    failures = catalog_failures(catalog_refresh_every_provider(credential=credential))
    if failures:
        raise CatalogRefreshFailed(f"Not refreshed: {failures}")
