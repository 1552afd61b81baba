from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import pluralize
from django.utils import timezone

from tasks.builder.catalog import catalog_failures, catalog_refresh_every_provider
from tasks.builder.jobs import refresh_model_catalog
from tasks.models import Credential


class Command(BaseCommand):
    help = "Refresh the model catalog of every provider from the free `models` endpoint."

    def add_arguments(self, parser):
        parser.add_argument("--credential", help="Credential name (default: the default credential).")
        parser.add_argument(
            "--enqueue", action="store_true", help="Leave it to the worker instead of fetching now."
        )
        parser.add_argument("--delay", type=float, default=0, help="With --enqueue: seconds to wait.")

    def handle(self, *args, credential=None, enqueue=False, delay=0, **options):
        credentials = Credential.objects.filter(is_active=True)
        found = credentials.filter(name=credential).first() if credential else credentials.first()
        if found is None:
            raise CommandError("No active credential to refresh the catalog with.")
        if enqueue:
            run_after = timezone.now() + timedelta(seconds=delay)
            refresh_model_catalog.using(run_after=run_after).enqueue(found.pk)
            self.stdout.write(f"The worker will refresh the model catalog with “{found.name}”.")
            return
        refreshed = catalog_refresh_every_provider(credential=found)
        for provider, got in refreshed.items():
            if not isinstance(got, Exception):
                self.stdout.write(f"{provider}: {len(got)} model{pluralize(got)} listed")
        failures = catalog_failures(refreshed)
        if failures:  # after the others are refreshed and listed
            raise CommandError(f"Not refreshed: {failures}")
