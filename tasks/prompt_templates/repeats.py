"""A batch the person sent a moment ago, sent again from a new page: the batch page asks before it is
charged twice.

The batch's idempotency key catches a double click and a resent confirmation of the same page. It cannot
catch the same batch submitted again from a new page: Back after a submit, a reload or a second tab loads
the page with a new key, and the same rows pasted again make the same plan. Each is a batch of paid tasks,
almost always by accident. So a confirmation whose plan (`BatchPlan.fingerprint`: every task's body,
provider and mode, the credential and its price multiplier; not the batch's name) is the plan of a batch
this person submitted within REPEAT_WINDOW is not sent: the page names the earlier batch and offers
"Send it again" (docs/builder.md, "Batches").
"""

from django.db.models import Exists, OuterRef
from django.utils import timezone

from tasks.builder.repeats import REPEAT_WINDOW
from tasks.models import Batch, Task


def recent_same_batch(*, user, fingerprint: str, idempotency_key: str) -> Batch | None:
    """The latest batch `user` submitted with the plan `fingerprint` within REPEAT_WINDOW, unless the
    upstream refused every one of its tasks; None if there is none, or if the idempotency key made a
    batch already (the same page confirmed again: `batch_submit` answers with that batch)."""
    if user is None or not user.is_authenticated or not fingerprint:
        return None
    if Task.objects.filter(idempotency_key=f"{idempotency_key}:0").exists():  # batch_submit's first key
        return None
    not_refused = Task.objects.filter(batch=OuterRef("pk")).exclude(status=Task.Status.FAILED)
    return (
        Batch.objects.filter(
            created_by=user,
            plan_fingerprint=fingerprint,
            created_at__gte=timezone.now() - REPEAT_WINDOW,
        )
        .filter(Exists(not_refused))
        .order_by("-created_at")
        .first()
    )
