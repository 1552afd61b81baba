"""A webhook URL is refused, at the field and again before each delivery, when its address reaches the
server's own network in any spelling: IPv4 written as IPv6 (mapped, compatible, translated), through the
NAT64 or 6to4 prefixes, unspecified, site-local, or a localhost name with a trailing dot."""

import socket

import pytest
import responses
from django.core.exceptions import ValidationError
from django.urls import reverse

from tasks.models import Alert, AlertDelivery, AlertDestination
from tasks.monitors.alerts import alert_raise, deliveries_due
from tasks.monitors.destinations import webhook_url_check
from tests.monitors.factories import make_monitor

# Each reaches 127.0.0.1, 10.0.0.1 or the host itself.
INWARD_IPV6 = [
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::127.0.0.1",  # IPv4-compatible (deprecated, still routed by some stacks)
    "::ffff:0:127.0.0.1",  # IPv4-translated (SIIT)
    "64:ff9b::7f00:1",  # NAT64 well-known prefix → 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 well-known prefix → 10.0.0.1
    "64:ff9b:1::a00:1",  # NAT64 local-use prefix
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "::",  # unspecified: the host itself
    "::1",
    "fec0::1",  # site-local (deprecated, still local)
    "fe80::1",
    "fd00::1",
]
INWARD_IPV4 = [
    "0.0.0.0",  # noqa: S104 (an address refused, not bound)
    "127.0.0.1",
    "100.64.0.1",
    "169.254.169.254",
    "192.0.0.170",
]


def _resolves_to(monkeypatch, address):
    family = socket.AF_INET6 if ":" in address else socket.AF_INET

    def fake(host, port, **kwargs):
        sockaddr = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
        return [(family, socket.SOCK_STREAM, 6, "", sockaddr)]

    monkeypatch.setattr(socket, "getaddrinfo", fake)


@pytest.fixture
def private_refused(settings):
    settings.ALERT_WEBHOOKS_ALLOW_PRIVATE = False


@pytest.mark.parametrize("address", INWARD_IPV6 + INWARD_IPV4)
def test_a_name_resolving_to_an_inward_address_in_any_spelling_is_refused(
    address, monkeypatch, private_refused
):
    _resolves_to(monkeypatch, address)
    with pytest.raises(ValidationError, match="internal or private address"):
        webhook_url_check("https://hooks.example.com/x")


@pytest.mark.parametrize("address", INWARD_IPV6)
def test_an_inward_ipv6_literal_is_refused_without_asking_dns(address, monkeypatch, private_refused):
    _resolves_to(monkeypatch, "93.184.216.34")  # a resolver that would say "public" must not be asked
    with pytest.raises(ValidationError, match="internal or private address"):
        webhook_url_check(f"http://[{address}]/hook")


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",  # 127.0.0.1 as one decimal number
        "http://0x7f.1/",
        "http://017700000001/",  # octal
        "http://0x7f000001/",
        "http://127.1/",
        "http://0/",
        "http://localhost./",
        "http://LOCALHOST/",
        "http://api.localhost/",
    ],
)
def test_numeric_ipv4_spellings_and_localhost_names_are_refused(url, private_refused):
    with pytest.raises(ValidationError, match="internal or private address"):
        webhook_url_check(url)


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "64:ff9b::808:808"]
)
def test_public_addresses_are_accepted(address, monkeypatch, private_refused):
    _resolves_to(monkeypatch, address)
    webhook_url_check("https://hooks.example.com/x")


@pytest.mark.django_db
@pytest.mark.parametrize("address", ["::127.0.0.1", "64:ff9b::7f00:1", "::ffff:0:10.0.0.1", "fec0::1"])
def test_adding_an_inward_ipv6_webhook_says_so_at_the_field_and_keeps_the_input(
    address, member_client, credential, catalog, private_refused
):
    monitor = make_monitor(credential=credential)
    url = f"http://[{address}]/hook"
    response = member_client.post(
        reverse("monitors:destination_add", args=[monitor.slug]), {"kind": "webhook", "url": url}
    )
    page = response.content.decode()
    assert response.status_code == 400
    assert "internal or private address" in page and url in page
    assert not AlertDestination.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("address", ["::127.0.0.1", "64:ff9b::a9fe:a9fe", "::ffff:0:127.0.0.1", "fec0::1"])
def test_a_webhook_whose_name_now_resolves_to_an_inward_ipv6_address_is_not_called(
    address, credential, catalog, monkeypatch, private_refused
):
    monitor = make_monitor(credential=credential)
    destination = AlertDestination(kind=AlertDestination.Kind.WEBHOOK, monitor=monitor)
    destination.set_url("https://hooks.example.com/services/x")
    destination.save()
    _resolves_to(monkeypatch, address)
    with responses.RequestsMock() as mocked:  # any call would fail the test
        alert_raise(key="k", kind=Alert.Kind.RUN_FAILED, message="x", monitor=monitor)
        deliveries_due()
        assert not mocked.calls
    assert "private address" in AlertDelivery.objects.get().last_error


@pytest.mark.django_db
def test_a_name_that_answers_public_for_the_check_and_inward_for_the_call_is_not_reached(
    credential, catalog, monkeypatch, private_refused
):
    """DNS rebinding: the check and the HTTP client each resolve the name; the connection made is judged."""
    import http.server
    import threading

    received = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    answers = iter(["93.184.216.34"])  # the check's answer; every later one points inward

    def rebinding(host, port, *args, **kwargs):
        address = next(answers, "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monitor = make_monitor(credential=credential)
    destination = AlertDestination(kind=AlertDestination.Kind.WEBHOOK, monitor=monitor)
    destination.set_url(f"http://hooks.example.com:{server.server_port}/hook")
    destination.save()
    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    try:
        alert_raise(key="k", kind=Alert.Kind.RUN_FAILED, message="x", monitor=monitor)
        deliveries_due()
    finally:
        server.shutdown()
        server.server_close()

    assert received == []
    delivery = AlertDelivery.objects.get()
    assert delivery.state == AlertDelivery.State.PENDING and "private address" in delivery.last_error
