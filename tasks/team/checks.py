"""Checking a credential against the upstream's free `models` endpoint."""

from django.utils import timezone

from tasks.crypto import CredentialKeyError
from tasks.models import Credential
from tasks.upstream.clients import client_for
from tasks.upstream.outcomes import UpstreamError


def credential_verify(*, credential: Credential) -> tuple[bool, str]:
    """Check a credential with the free `models` endpoint and record the time and outcome."""
    try:
        with client_for(credential) as client:
            count = len(client.models("chat_gpt"))
        ok, message = True, f"OK: the models endpoint listed {count} ChatGPT models."
    except (UpstreamError, CredentialKeyError, ValueError) as exc:  # ValueError: a client it cannot make
        ok, message = False, str(exc)
    Credential.objects.filter(pk=credential.pk).update(
        last_verified_at=timezone.now(), last_verification_ok=ok, last_verification_message=message[:500]
    )
    credential.refresh_from_db()
    return ok, message
