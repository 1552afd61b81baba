"""Who is calling: the AIsa routes take a Bearer key, the DataForSEO routes HTTP Basic.

An account is a short string stored with each task, so a task is only visible to whoever posted it:
'key:<first 12 hex digits of the key's SHA-256>' or 'login:<login>'.
"""

import base64
import binascii
import hashlib
import hmac

from django.conf import settings

AISA = "aisa"
DATAFORSEO = "dataforseo"


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def account_for(route: str, authorization: str) -> str | None:
    """The account the Authorization header proves, or None when it proves nothing on this route."""
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if route == AISA:
        if scheme.lower() != "bearer" or not credentials:
            return None
        # Compare against every key (no early exit) so timing says nothing about which key nearly matched.
        matches = [_same(credentials, key) for key in settings.SANDBOX_API_KEYS]
        if not any(matches):
            return None
        return "key:" + hashlib.sha256(credentials.encode()).hexdigest()[:12]
    if scheme.lower() != "basic":
        return None
    try:
        login, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    login_ok = _same(login, settings.SANDBOX_LOGIN)
    password_ok = _same(password, settings.SANDBOX_PASSWORD)
    return f"login:{login}" if login_ok and password_ok else None
