"""Posting an alert to a webhook: the one place outside the upstream client that makes an HTTP call.

No redirect is followed (a webhook URL checked as public must not bounce the request inward); the
caller checks the address first (tasks.monitors.destinations.webhook_url_check) and passes
`address_refusal`, asked again about the address each connection actually reached: the HTTP client
resolves the name itself, and a DNS server may answer differently the second time (DNS rebinding).
Through a proxy (HTTP(S)_PROXY) the proxy makes the connection, so that check is the proxy's.
"""

from collections.abc import Callable

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

WEBHOOK_TIMEOUT = (5, 10)  # connect, read


class WebhookError(Exception):
    """The webhook did not take the alert; the message says why (never the URL: it may hold a token)."""


class _AddressRefused(NewConnectionError):
    """The connection reached an address `address_refusal` refused; closed before anything was sent."""

    def __init__(self, connection, reason: str):
        super().__init__(connection, reason)
        self.refusal = reason


def _checked(connection_cls: type[HTTPConnection], refusal: Callable[[str], str | None]) -> type:
    class AddressCheckedConnection(connection_cls):
        def _new_conn(self):
            sock = super()._new_conn()
            reason = refusal(sock.getpeername()[0])
            if reason:
                sock.close()
                raise _AddressRefused(self, reason)
            return sock

    return AddressCheckedConnection


class _AddressCheckedAdapter(HTTPAdapter):
    """requests' adapter whose direct connections are checked once connected, before a byte is sent."""

    def __init__(self, refusal: Callable[[str], str | None]):
        self._refusal = refusal  # before super().__init__, which builds the pool manager
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        http = _checked(HTTPConnection, self._refusal)
        https = _checked(HTTPSConnection, self._refusal)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("AddressCheckedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("AddressCheckedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }


def _refusal_in(exc: BaseException) -> str | None:
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return reason.refusal if isinstance(reason, _AddressRefused) else None


def webhook_post(
    url: str, payload: dict, *, address_refusal: Callable[[str], str | None] | None = None
) -> int:
    """POST `payload` as JSON; return the HTTP status of a 2xx answer, else raise WebhookError.

    `address_refusal(ip)` returns why the server must not talk to `ip` (or None); it is asked about the
    address each connection reached, and a refused connection is closed before the request is sent."""
    with requests.Session() as session:
        if address_refusal is not None:
            adapter = _AddressCheckedAdapter(address_refusal)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        try:
            response = session.post(url, json=payload, timeout=WEBHOOK_TIMEOUT, allow_redirects=False)
        except requests.RequestException as exc:
            refused = _refusal_in(exc)
            if refused:
                raise WebhookError(refused) from None
            raise WebhookError(f"Could not reach the webhook: {type(exc).__name__}.") from None
    if not 200 <= response.status_code < 300:
        raise WebhookError(f"The webhook answered HTTP {response.status_code}.")
    return response.status_code
