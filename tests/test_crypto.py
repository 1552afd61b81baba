import hashlib

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from tasks import crypto
from tasks.models import Credential

SECRET = "sk-live-TOPSECRET-9876"


def make_credential(**overrides) -> Credential:
    credential = Credential(name=overrides.pop("name", "AIsa"), kind=Credential.Kind.AISA, **overrides)
    credential.set_secret(SECRET)
    credential.save()
    return credential


@pytest.mark.django_db
def test_the_database_column_never_holds_the_plaintext_secret():
    credential = make_credential()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM tasks_credential WHERE id = %s", [credential.pk])
        row = cursor.fetchone()
    assert all(SECRET not in str(value) for value in row)
    assert credential.secret_hint == "9876"
    assert Credential.objects.get(pk=credential.pk).get_secret() == SECRET


@pytest.mark.django_db
def test_a_wrong_key_raises_a_clear_error_instead_of_returning_ciphertext(settings):
    credential = make_credential()
    settings.CREDENTIAL_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.CredentialKeyError, match="not in CREDENTIAL_KEYS"):
        Credential.objects.get(pk=credential.pk).get_secret()


def test_a_missing_key_raises(settings):
    settings.CREDENTIAL_KEYS = []
    with pytest.raises(crypto.CredentialKeyError, match="not set"):
        crypto.encrypt("x")


def test_a_malformed_key_raises(settings):
    settings.CREDENTIAL_KEYS = ["not-a-fernet-key"]
    with pytest.raises(crypto.CredentialKeyError, match="not a Fernet key"):
        crypto.decrypt("whatever")


@pytest.mark.django_db
def test_keys_rotate_by_putting_the_new_key_first(settings):
    old = settings.CREDENTIAL_KEYS[0]
    credential = make_credential()
    settings.CREDENTIAL_KEYS = [Fernet.generate_key().decode(), old]
    assert Credential.objects.get(pk=credential.pk).get_secret() == SECRET


@pytest.mark.django_db
def test_repr_and_str_show_only_the_hint_and_fingerprint():
    credential = make_credential()
    assert SECRET not in repr(credential) and SECRET not in str(credential)
    assert credential.secret_fingerprint == crypto.fingerprint(SECRET)


def test_the_fingerprint_is_keyed_with_the_server_key_and_not_a_plain_hash(settings):
    first = crypto.fingerprint("nope")

    assert first != hashlib.sha256(b"nope").hexdigest()[:12]  # cannot be looked up in a table
    assert len(first) == 12
    settings.CREDENTIAL_KEYS = [Fernet.generate_key().decode(), *settings.CREDENTIAL_KEYS]
    assert crypto.fingerprint("nope") == first  # rotating CREDENTIAL_KEYS changes no fingerprint
    settings.SECRET_KEY = "another-server-key-for-this-test-only"
    assert crypto.fingerprint("nope") != first  # the key is derived from SECRET_KEY


@pytest.mark.parametrize(
    ("secret", "hint"), [("a", ""), ("nope", ""), ("nope1234", ""), ("nope12345", "2345")]
)
def test_only_a_secret_longer_than_8_characters_has_a_hint(secret, hint):
    assert crypto.hint(secret) == hint
