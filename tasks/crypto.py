"""Encryption of credential secrets at rest, with MultiFernet under CREDENTIAL_KEYS (not SECRET_KEY).

The first key encrypts; every key decrypts, so keys can be rotated by putting a new one first.
"""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.utils.crypto import salted_hmac


class CredentialKeyError(Exception):
    """The stored secret cannot be decrypted with the configured CREDENTIAL_KEYS."""


def _fernet() -> MultiFernet:
    keys = settings.CREDENTIAL_KEYS
    if not keys:
        raise CredentialKeyError("CREDENTIAL_KEYS is not set: credentials cannot be used.")
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except (ValueError, TypeError) as exc:
        raise CredentialKeyError(
            "CREDENTIAL_KEYS holds a value that is not a Fernet key (32 url-safe base64 bytes)."
        ) from exc


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def rotate(token: str) -> str:
    """`token` re-encrypted under the first of CREDENTIAL_KEYS (MultiFernet.rotate), or `token` itself when
    that key already decrypts it; raises CredentialKeyError when no configured key does."""
    fernet = _fernet()
    try:
        Fernet(settings.CREDENTIAL_KEYS[0]).decrypt(token.encode())
    except InvalidToken:
        pass
    else:
        return token
    try:
        return fernet.rotate(token.encode()).decode()
    except InvalidToken:
        raise CredentialKeyError("No key in CREDENTIAL_KEYS decrypts this credential.") from None


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise CredentialKeyError(
            "This credential was encrypted with a key that is not in CREDENTIAL_KEYS; "
            "add the old key back (after the new one) or enter the secret again."
        ) from None


FINGERPRINT_SALT = "tasks.crypto.fingerprint"
HINT_MIN_LENGTH = 9  # a secret this long or longer may show its last four characters; a shorter one never


def fingerprint(plaintext: str) -> str:
    """A short, stable identifier of a secret for audit logs (12 hex characters).

    Keyed: HMAC-SHA256 under a key derived from SECRET_KEY for this purpose alone (Django's `salted_hmac`,
    salt FINGERPRINT_SALT), so a fingerprint cannot be looked up in a table or brute-forced without the
    server's SECRET_KEY, and the key serves nothing else. It does not depend on CREDENTIAL_KEYS: rotating
    those leaves every fingerprint as it was. Rotating SECRET_KEY changes the fingerprint a secret gets
    from then on; fingerprints already stored stay as they were recorded.
    """
    return salted_hmac(FINGERPRINT_SALT, plaintext, algorithm="sha256").hexdigest()[:12]


def hint(plaintext: str) -> str:
    """The last four characters of a secret, shown to tell credentials apart; "" for a secret of 8
    characters or fewer, of which even four would be too much."""
    return plaintext[-4:] if len(plaintext) >= HINT_MIN_LENGTH else ""
