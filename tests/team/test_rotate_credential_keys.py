"""`manage.py rotate_credential_keys`: every credential re-encrypted under the first of CREDENTIAL_KEYS,
so the old key can then be dropped; idempotent, audited, and honest about what it could not decrypt."""

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import CommandError, call_command

from tasks.models import AuditEntry, Credential
from tests.factories import make_credential

pytestmark = pytest.mark.django_db

OLD, NEW, OTHER = (Fernet.generate_key().decode() for _ in range(3))


def _encrypted_under(key: str, credential: Credential) -> bool:
    credential.refresh_from_db()
    try:
        Fernet(key).decrypt(credential.secret_encrypted.encode())
    except InvalidToken:
        return False
    return True


def test_old_key_credentials_are_re_encrypted_under_the_new_key_and_survive_dropping_the_old(
    settings, capsys
):
    settings.CREDENTIAL_KEYS = [OLD]
    first = make_credential("Main", secret="aisa-secret-one-1111")
    second = make_credential("Backup", secret="aisa-secret-two-2222")
    settings.CREDENTIAL_KEYS = [NEW, OLD]

    call_command("rotate_credential_keys")

    assert "Re-encrypted 2 credentials under the first key; 0 already were." in capsys.readouterr().out
    assert _encrypted_under(NEW, first) and _encrypted_under(NEW, second)
    settings.CREDENTIAL_KEYS = [NEW]  # the old key dropped
    assert Credential.objects.get(pk=first.pk).get_secret() == "aisa-secret-one-1111"
    assert Credential.objects.get(pk=second.pk).get_secret() == "aisa-secret-two-2222"
    entries = AuditEntry.objects.filter(action="credential.rotate")
    assert sorted(entries.values_list("object_id", flat=True)) == sorted([str(first.pk), str(second.pk)])
    assert not any("aisa-secret" in repr(entry.changes) for entry in entries)


def test_running_it_again_changes_nothing(settings, capsys):
    settings.CREDENTIAL_KEYS = [OLD]
    credential = make_credential("Main", secret="aisa-secret-one-1111")
    settings.CREDENTIAL_KEYS = [NEW, OLD]
    call_command("rotate_credential_keys")
    credential.refresh_from_db()
    token = credential.secret_encrypted
    capsys.readouterr()

    call_command("rotate_credential_keys")

    credential.refresh_from_db()
    assert credential.secret_encrypted == token
    assert "Re-encrypted 0 credentials under the first key; 1 already was." in capsys.readouterr().out
    assert AuditEntry.objects.filter(action="credential.rotate").count() == 1


def test_a_credential_no_key_decrypts_is_named_and_the_others_still_rotate(settings):
    settings.CREDENTIAL_KEYS = [OTHER]
    lost = make_credential("Lost", secret="aisa-secret-lost-0000")
    settings.CREDENTIAL_KEYS = [OLD]
    kept = make_credential("Kept", secret="aisa-secret-kept-3333")
    settings.CREDENTIAL_KEYS = [NEW, OLD]
    lost.refresh_from_db()
    before = lost.secret_encrypted

    with pytest.raises(CommandError, match=r"1 credential could not be decrypted .*: Lost\."):
        call_command("rotate_credential_keys")

    assert _encrypted_under(NEW, kept)
    lost.refresh_from_db()
    assert lost.secret_encrypted == before  # left for its key to be added back
