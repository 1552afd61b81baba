"""The product's own callback URLs (`services.callback_urls`): telling them from a person's own, and
masking their token wherever a request or a result is shown.

A task's pingback/postback URLs carry a token that lets anyone who has it report that task's result.
The exact body is kept for the upstream call only; pages, exports and the admin show the token as
`****`. A body that carries the product's own URLs (copied from another task or a template) never
passes them on: each task gets its own (`sending._create_tasks`), and the builder never prefills them.
"""

import re
import uuid

from django.conf import settings

MASK = "****"
# The path of the callback routes (tasks/views/callbacks.py): /callbacks/<task-id>/<token>/<kind>/
_CALLBACK_PATH = re.compile(
    r"/callbacks/(?P<task_id>[0-9a-fA-F-]{32,36})/(?P<token>[^/?#\s\"'\\<>]+)/(?P<kind>pingback|postback)/"
)
CALLBACK_FIELDS = ("pingback_url", "postback_url")


def callback_url_is_own(url) -> bool:
    """Whether `url` is one of the product's own pingback/postback URLs, of any task: one this server
    signed (the token is valid for the task id in it), or one on PUBLIC_BASE_URL's callback path (a copy
    whose token was masked or edited). A person's own URL elsewhere is not."""
    if not isinstance(url, str):
        return False
    match = _CALLBACK_PATH.search(url)
    if match is None:
        return False
    base = settings.PUBLIC_BASE_URL
    if base and url.startswith(f"{base}/callbacks/"):
        return True
    from tasks.submission.callbacks import callback_token_is_valid

    try:
        task_id = uuid.UUID(match["task_id"])
    except ValueError:
        return False
    return callback_token_is_valid(task_id, match["token"])


def without_own_callbacks(fields: dict) -> dict:
    """`fields` without the product's own pingback/postback URLs (a person's own ones stay)."""
    return {
        name: value
        for name, value in fields.items()
        if name not in CALLBACK_FIELDS or not callback_url_is_own(value)
    }


def callback_tokens_masked(text: str) -> str:
    """`text` (e.g. a request body as JSON) with the token of every callback URL of the product's
    shape replaced by MASK, whichever task or server it belongs to."""
    return _CALLBACK_PATH.sub(lambda m: f"/callbacks/{m['task_id']}/{MASK}/{m['kind']}/", text)
