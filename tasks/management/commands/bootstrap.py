"""First-run setup for `make run`: an admin account and, with the stand-in mounted, a credential for it.

Safe to run on every start: it changes nothing once an admin and a credential exist.
"""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from tasks.models import Credential
from tasks.team import people

LOCAL_CREDENTIAL_NAME = "Local stand-in (AIsa)"


class Command(BaseCommand):
    help = "Create the first admin (password printed once) and a credential for the local stand-in upstream."

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="Where this server answers; the stand-in credential points at <base-url>/sandbox/...",
        )
        parser.add_argument("--username", default="admin", help="Name of the admin account to create.")

    def handle(self, *args, base_url: str, username: str, **options):
        base_url = base_url.rstrip("/")
        with transaction.atomic():
            password = self._ensure_admin(username=username)
            self._ensure_local_credential(base_url=base_url)
        if password:
            line = f"Log in at {base_url} as {username} / {password} — shown only once"
            rule = "=" * len(line)
            self.stdout.write(self.style.SUCCESS(f"\n{rule}\n{line}\n{rule}\n"))

    def _ensure_admin(self, *, username: str) -> str | None:
        """Create the admin when there is no superuser yet; returns the generated password, or None."""
        user_model = get_user_model()
        if user_model.objects.filter(is_superuser=True).exists():
            return None
        if people.username_taken(username):
            raise CommandError(
                f"A user named {username!r} exists but there is no superuser; "
                "choose another --username or run `manage.py createsuperuser`."
            )
        password = secrets.token_urlsafe(16)
        user = user_model.objects.create_superuser(username=username, email="", password=password)
        admins = Group.objects.filter(name="Admins").first()
        if admins is not None:
            user.groups.add(admins)
        self.stdout.write(f"Created the admin account {username!r}.")
        return password

    def _ensure_local_credential(self, *, base_url: str) -> None:
        if not settings.SANDBOX_ENABLED or Credential.objects.exists():
            return
        api_keys = getattr(settings, "SANDBOX_API_KEYS", None)
        credential = Credential(
            name=LOCAL_CREDENTIAL_NAME,
            kind=Credential.Kind.AISA,
            base_url=f"{base_url}/sandbox/apis/v1/dataforseo",
            is_default=True,
            created_by=get_user_model().objects.filter(is_superuser=True).order_by("pk").first(),
        )
        credential.set_secret(api_keys[0] if api_keys else "sandbox-key")
        credential.save()
        self.stdout.write(f"Created the credential {LOCAL_CREDENTIAL_NAME!r} for {credential.base_url}.")
