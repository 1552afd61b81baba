"""A request the person sent a moment ago, sent again from a new page: the builder asks before it is charged
twice.

The builder's idempotency key catches a double click, a resent form and a retry of the same page. It cannot
catch the same request submitted again from a new page: Back after a submit (the browser loads the builder
again, with a new key, and puts back what was typed), a reload, or a second tab. Those are almost always by
accident, and each is a paid task. So a submission whose request is the same, field for field, as one this
person sent on the same credential, provider and mode within REPEAT_WINDOW is not sent: the builder names
the earlier task and offers "Send it again", which sends it (docs/builder.md, "Sending the same request
twice").
"""

from datetime import timedelta

from django.utils import timezone

from tasks.models import Task

REPEAT_WINDOW = timedelta(minutes=10)
# Set for each task when it is written (its own callback URLs carry its token; an empty tag becomes one
# naming it: submission/sending.py), so not compared in the body; the person's tag is `Task.tag`.
_PER_TASK_FIELDS = ("postback_url", "pingback_url", "tag")


def recent_same_request(*, user, credential, provider: str, mode: str, body: dict, key: str) -> Task | None:
    """The latest task `user` sent with this same `body` (callback URLs aside) on `credential`, `provider`
    and `mode` within REPEAT_WINDOW, unless the upstream refused it; None if there is none, or if the
    idempotency `key` is a task's already (the same page sent again: that task is the answer)."""
    if user is None or not user.is_authenticated or Task.objects.filter(idempotency_key=key).exists():
        return None
    candidates = (
        Task.objects.filter(
            submitted_by=user,
            credential=credential,
            provider=provider,
            mode=mode,
            batch__isnull=True,
            created_at__gte=timezone.now() - REPEAT_WINDOW,
            model_name=str(body.get("model_name", "")),
            user_prompt=str(body.get("user_prompt", ""))[:500],  # as the task stores them
            tag=str(body.get("tag", ""))[:255],
        )
        .exclude(status=Task.Status.FAILED)
        .order_by("-created_at")
        .only("pk", "created_at", "request_body")[:20]
    )
    wanted = _comparable(body)
    return next((task for task in candidates if _comparable(task.request_body) == wanted), None)


def _comparable(body) -> dict:
    if not isinstance(body, dict):
        return {}
    return {key: value for key, value in body.items() if key not in _PER_TASK_FIELDS}
