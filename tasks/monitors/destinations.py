"""Alert destinations: email addresses or webhook URLs, and the check that a webhook is a public address.

A webhook is called by the server, so a URL naming the server's own network (loopback, private ranges,
link-local such as the cloud metadata address 169.254.169.254, …) would let anyone who can add a
destination make the server call inside it (SSRF). Such a URL is refused, when added and again before
every delivery (its name may resolve elsewhere later), unless ALERT_WEBHOOKS_ALLOW_PRIVATE is set (the
stand-in and local runs; never in production).
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email


def webhook_url_check(url: str) -> None:
    """Raise ValidationError (for the person) unless `url` is an http(s) URL whose host resolves only to
    public addresses."""
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValidationError("Give an http:// or https:// URL.")
    if parts.username or parts.password:
        raise ValidationError("A webhook URL cannot carry a user name or password before the host.")
    if getattr(settings, "ALERT_WEBHOOKS_ALLOW_PRIVATE", False):
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValidationError("The port of this URL is not a number between 0 and 65535.") from None
    try:
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise ValidationError(f"The host “{parts.hostname}” cannot be resolved.") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global or address.is_multicast:
            raise ValidationError(
                f"The host “{parts.hostname}” resolves to {address}, an internal or private address: "
                "the server will not call into its own network."
            )


def emails_parse(text: str) -> list[str]:
    """Comma- or space-separated addresses, each checked; ValidationError names the first bad one."""
    addresses = [part.strip() for part in text.replace(";", ",").replace(" ", ",").split(",") if part.strip()]
    if not addresses:
        raise ValidationError("Give at least one email address.")
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            raise ValidationError(f"“{address}” is not an email address.") from None
    return addresses
