"""Encryption of credential secrets at rest, with MultiFernet under CREDENTIAL_KEYS (not SECRET_KEY).

The first key encrypts; every key decrypts, so keys can be rotated by putting a new one first.
"""

import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


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


def fingerprint(plaintext: str) -> str:
    """A short, stable identifier of a secret for audit logs; cannot be reversed."""
    return hashlib.sha256(plaintext.encode()).hexdigest()[:12]
