"""Callbacks: the signed tokens of our own pingback/postback URLs, and applying a postback."""

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.crypto import constant_time_compare

from tasks.models import Task, TaskEvent
from tasks.submission.collection import task_apply_outcome
from tasks.upstream.outcomes import UpstreamMalformed, parse_task_outcome
from tasks.upstream.results import json_depth_exceeds

CALLBACK_SALT = "tasks.callback"


def callback_token(task_id) -> str:
    """An unguessable per-task token for the callback URLs; verifiable without the database."""
    return signing.Signer(salt=CALLBACK_SALT).signature(str(task_id))


def callback_token_is_valid(task_id, token: str) -> bool:
    return constant_time_compare(callback_token(task_id), token)


def callback_urls(task_id) -> dict[str, str]:
    """The product's own pingback/postback URLs for a task, or {} when PUBLIC_BASE_URL is unset."""
    if not settings.PUBLIC_BASE_URL:
        return {}
    token = callback_token(task_id)
    kwargs = {"task_id": task_id, "token": token}
    # The upstream puts its own task id in place of $id: what a task whose reply was lost needs.
    pingback = reverse("submission:callback_pingback", kwargs=kwargs) + "?id=$id"
    return {
        "pingback_url": settings.PUBLIC_BASE_URL + pingback,
        "postback_url": settings.PUBLIC_BASE_URL + reverse("submission:callback_postback", kwargs=kwargs),
    }


class PostbackRejected(Exception):
    """A postback body that cannot be applied to its task; nothing was changed. The message says why."""


def callback_postback_apply(*, task: Task, envelope) -> None:
    """Apply a postback body (the task_get envelope) to `task`.

    Raises PostbackRejected, having changed nothing, when the body is not an envelope (not an object, no
    task list, nested deeper than any result), holds no task object about this task, or that task object
    is not usable (no integer status_code, a cost that is not a number, a result that is not a list, ...).
    A usable one is recorded as a poll's would be (task_apply_outcome).
    """
    if not isinstance(envelope, dict):
        raise PostbackRejected("the body is not a JSON object")
    if json_depth_exceeds(envelope):
        raise PostbackRejected("the body is nested too deeply to be a task's result")
    tasks = envelope.get("tasks")
    if not isinstance(tasks, list):
        raise PostbackRejected("the body holds no task list")
    for raw in tasks:
        if isinstance(raw, dict) and raw.get("id") == task.upstream_task_id:
            try:
                outcome = parse_task_outcome(raw)
            except UpstreamMalformed as exc:
                raise PostbackRejected(str(exc)) from None
            task_apply_outcome(task=task, outcome=outcome, source=TaskEvent.Kind.CALLBACK)
            return
    raise PostbackRejected("no result for this task in the body")
