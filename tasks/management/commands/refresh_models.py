from django.core.management.base import BaseCommand, CommandError

from tasks.clients import UpstreamError
from tasks.crypto import CredentialKeyError
from tasks.models import Credential, Provider
from tasks.services import catalog_refresh


class Command(BaseCommand):
    help = "Refresh the model catalog of every provider from the free `models` endpoint."

    def add_arguments(self, parser):
        parser.add_argument("--credential", help="Credential name (default: the default credential).")

    def handle(self, *args, credential=None, **options):
        credentials = Credential.objects.filter(is_active=True)
        found = credentials.filter(name=credential).first() if credential else credentials.first()
        if found is None:
            raise CommandError("No active credential to refresh the catalog with.")
        for provider in Provider.values:
            try:
                models = catalog_refresh(credential=found, provider=provider)
            except (UpstreamError, CredentialKeyError) as exc:
                raise CommandError(f"{provider}: {exc}") from None
            self.stdout.write(f"{provider}: {len(models)} models listed")
