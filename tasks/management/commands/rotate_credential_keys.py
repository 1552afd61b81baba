"""Re-encrypt every stored credential under the first of CREDENTIAL_KEYS, so the old keys can be dropped.

Run after putting a new key first (CREDENTIAL_KEYS=<new>,<old>). Idempotent: a credential the first key
already decrypts is left as it is. Each re-encrypted credential gets an audit entry. Reports how many were
rotated, how many were already current, and which could not be decrypted with any configured key (their
secret must be entered again, or the missing old key added back); exits non-zero if any could not.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.template.defaultfilters import pluralize

from tasks import crypto
from tasks.models import AlertDestination, Credential
from tasks.team.audit import audit_record


class Command(BaseCommand):
    help = "Re-encrypt every credential under the first of CREDENTIAL_KEYS (after adding a new key first)."

    def handle(self, *args, **options):
        try:
            crypto.encrypt("")  # the keys are usable at all
        except crypto.CredentialKeyError as exc:
            raise CommandError(str(exc)) from exc
        rotated, current, failed = 0, 0, []
        for pk in Credential.objects.order_by("pk").values_list("pk", flat=True):
            with transaction.atomic():
                credential = Credential.objects.select_for_update().get(pk=pk)
                try:
                    token = crypto.rotate(credential.secret_encrypted)
                except crypto.CredentialKeyError:
                    failed.append(credential.name)
                    continue
                if token == credential.secret_encrypted:
                    current += 1
                    continue
                Credential.objects.filter(pk=pk).update(secret_encrypted=token)
                audit_record(
                    actor=None,
                    action="credential.rotate",
                    obj=credential,
                    changes={"encryption": "re-encrypted under the first of CREDENTIAL_KEYS"},
                )
                rotated += 1
        self.stdout.write(
            f"Re-encrypted {rotated} credential{pluralize(rotated)} under the first key; "
            f"{current} already {pluralize(current, 'was,were')}."
        )
        # Alert webhooks' URLs (they carry their tokens) are stored the same way (docs/monitors.md).
        hooks = 0
        for destination in AlertDestination.objects.exclude(url_encrypted="").order_by("pk"):
            try:
                token = crypto.rotate(destination.url_encrypted)
            except crypto.CredentialKeyError:
                failed.append(f"alert webhook {destination}")
                continue
            if token != destination.url_encrypted:
                AlertDestination.objects.filter(pk=destination.pk).update(url_encrypted=token)
                hooks += 1
        if hooks:
            self.stdout.write(f"Re-encrypted {hooks} alert webhook URL{pluralize(hooks)}.")
        if failed:
            raise CommandError(
                f"{len(failed)} credential{pluralize(failed)} could not be decrypted with any of "
                f"CREDENTIAL_KEYS: "
                f"{', '.join(failed)}. Add the key they were saved with (after the new one) and run this "
                "again, or enter their secrets anew on the Credentials page."
            )
