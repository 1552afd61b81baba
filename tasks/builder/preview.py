"""The builder's preview: the request body as it will be sent, its URL and a curl command (secret masked)."""

import json
import shlex
import uuid

from django.conf import settings
from django.urls import NoReverseMatch, reverse

from tasks.models import Credential


def _callback_placeholder(kind: str) -> str:
    try:
        url = reverse(f"submission:callback_{kind}", kwargs={"task_id": uuid.UUID(int=0), "token": "TOKEN"})
    except NoReverseMatch:
        return f"{settings.PUBLIC_BASE_URL}/… (this task's own {kind} URL, added on submit)"
    url = url.replace(str(uuid.UUID(int=0)), "<task-id>").replace("TOKEN", "<token>")
    if kind == "pingback":
        url += "?id=$id"  # as submission.callbacks.callback_urls sends it
    return settings.PUBLIC_BASE_URL + url


def preview_body(body: dict) -> dict:
    """The task object as it will be posted: what services.submit_tasks adds shown as placeholders."""
    shown = dict(body)
    if settings.PUBLIC_BASE_URL and not shown.get("pingback_url") and not shown.get("postback_url"):
        shown["pingback_url"] = _callback_placeholder("pingback")
        shown["postback_url"] = _callback_placeholder("postback")
    if not shown.get("tag"):
        shown["tag"] = "aisa-dashboard:<task-id>"
    return shown


def endpoint_url(credential: Credential | None, provider: str, function: str = "task_post") -> str:
    base = credential.effective_base_url if credential else "<credential base URL>"
    return f"{base}/ai_optimization/{provider}/llm_responses/{function}"


def curl_command(credential: Credential | None, url: str, tasks: list[dict]) -> str:
    """A copyable curl command with the secret masked."""
    if credential is not None and credential.kind == Credential.Kind.DATAFORSEO:
        auth = f"-u {shlex.quote(credential.login + ':****')}"
    else:
        hint = credential.secret_hint if credential else ""
        auth = f"-H {shlex.quote('Authorization: Bearer ****' + hint)}"
    payload = json.dumps(tasks, ensure_ascii=False)
    return (
        f"curl -X POST {shlex.quote(url)} \\\n  {auth} \\\n"
        f"  -H 'Content-Type: application/json' \\\n  --data-raw {shlex.quote(payload)}"
    )
