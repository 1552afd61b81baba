"""Posting an alert to a webhook: the one place outside the upstream client that makes an HTTP call.

No redirect is followed (a webhook URL checked as public must not bounce the request inward); the
caller checks the address first (tasks.monitors.destinations.webhook_url_check).
"""

import requests

WEBHOOK_TIMEOUT = (5, 10)  # connect, read


class WebhookError(Exception):
    """The webhook did not take the alert; the message says why (never the URL: it may hold a token)."""


def webhook_post(url: str, payload: dict) -> int:
    """POST `payload` as JSON; return the HTTP status of a 2xx answer, else raise WebhookError."""
    try:
        response = requests.post(url, json=payload, timeout=WEBHOOK_TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        raise WebhookError(f"Could not reach the webhook: {type(exc).__name__}.") from None
    if not 200 <= response.status_code < 300:
        raise WebhookError(f"The webhook answered HTTP {response.status_code}.")
    return response.status_code
