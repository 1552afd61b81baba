"""Alert destinations: email addresses or webhook URLs, and the check that a webhook is a public address.

A webhook is called by the server, so a URL naming the server's own network (loopback, private ranges,
link-local such as the cloud metadata address 169.254.169.254, …) would let anyone who can add a
destination make the server call inside it (SSRF). Such a URL is refused, when added and again before
every delivery (its name may resolve elsewhere later), unless ALERT_WEBHOOKS_ALLOW_PRIVATE is set (the
stand-in and local runs; never in production). An IPv6 address that carries an IPv4 one (mapped,
compatible, translated, NAT64, 6to4) is judged by the IPv4 address it reaches.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

# IPv6 prefixes whose last 32 bits are the IPv4 address a packet reaches (ipaddress unwraps only the
# mapped ::ffff:0:0/96 and 6to4 2002::/16 forms itself).
_IPV4_IN_LAST_32_BITS = [
    ipaddress.IPv6Network("64:ff9b::/96"),  # NAT64 well-known prefix (RFC 6052)
    ipaddress.IPv6Network("::ffff:0:0:0/96"),  # IPv4-translated (SIIT, RFC 2765)
    ipaddress.IPv6Network("::/96"),  # IPv4-compatible (deprecated; :: and ::1 are in it too)
]
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: a network's own translator


def address_is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether the server may call `address`: globally routable, not multicast, and not an IPv6 spelling
    of an IPv4 address that is not."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL_USE or address.is_site_local:
            return False
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None:
            for network in _IPV4_IN_LAST_32_BITS:
                if address in network:
                    embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
                    break
        if embedded is not None:
            return address_is_public(embedded)
    # is_global alone varies between Python versions for a few ranges: each flag is asked too.
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def _is_localhost_name(hostname: str) -> bool:
    name = hostname.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")  # RFC 6761: always loopback


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
    if _is_localhost_name(parts.hostname):
        raise ValidationError(
            f"The host “{parts.hostname}” is this server itself, an internal or private address: "
            "the server will not call into its own network."
        )
    try:  # an address literal is judged as written, without asking DNS
        addresses = [ipaddress.ip_address(parts.hostname.split("%")[0])]
    except ValueError:
        try:
            infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError):
            raise ValidationError(f"The host “{parts.hostname}” cannot be resolved.") from None
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for address in addresses:
        if not address_is_public(address):
            raise ValidationError(
                f"The host “{parts.hostname}” resolves to {address}, an internal or private address: "
                "the server will not call into its own network."
            )


def webhook_address_refusal(address: str) -> str | None:
    """Why the server must not talk to `address`, the one a webhook's connection reached (None: it may);
    what webhook_url_check decided from DNS is asked again of the address actually connected to."""
    if getattr(settings, "ALERT_WEBHOOKS_ALLOW_PRIVATE", False):
        return None
    if address_is_public(ipaddress.ip_address(address.split("%")[0])):
        return None
    return (
        f"Not sent: the webhook's host answered {address} when called, an internal or private address: "
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
