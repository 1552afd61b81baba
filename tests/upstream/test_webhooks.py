"""webhook_post over real HTTP to a local receiver: the address each connection reached is asked of the
caller before anything is sent, for http and https alike."""

import http.server
import threading

import pytest

from tasks.upstream.webhooks import WebhookError, webhook_post


@pytest.fixture
def receiver():
    received = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port, received
    server.shutdown()
    server.server_close()


def test_an_allowed_address_is_posted_to(receiver):
    port, received = receiver
    asked = []

    status = webhook_post(
        f"http://127.0.0.1:{port}/hook", {"a": 1}, address_refusal=lambda ip: asked.append(ip) or None
    )

    assert status == 204 and received == [b'{"a": 1}'] and asked == ["127.0.0.1"]


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_refused_address_is_closed_before_anything_is_sent_and_the_reason_given(receiver, scheme):
    port, received = receiver

    with pytest.raises(WebhookError) as refused:
        webhook_post(
            f"{scheme}://127.0.0.1:{port}/hook?token=secret",
            {"a": 1},
            address_refusal=lambda ip: f"Not sent: {ip} is refused.",
        )

    assert str(refused.value) == "Not sent: 127.0.0.1 is refused."  # the reason alone, never the URL
    assert received == []
