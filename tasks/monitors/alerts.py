"""Alerts: raised once per key, delivered to each destination by email or webhook, retried with backoff.

`alert_raise` writes the alert and one delivery per destination (the monitor's, the budget's) in the
caller's transaction; a job delivers each one on commit. A delivery is claimed by moving its
`next_attempt_at` forward (a conditional UPDATE: one claimant), sent outside any transaction, then
recorded: sent, or retried after DELIVERY_BACKOFF[attempt], then failed (shown to admins on the alerts
page). The scheduler also delivers what is due, so a lost job only delays a delivery. A process killed
between the send and its record sends that alert again after the claim runs out: alerts are at least once.
"""

import logging
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.tasks import task
from django.urls import reverse
from django.utils import timezone

from tasks.crypto import CredentialKeyError
from tasks.models import Alert, AlertDelivery, AlertDestination
from tasks.monitors.destinations import emails_parse, webhook_address_refusal, webhook_url_check
from tasks.upstream.webhooks import WebhookError, webhook_post

logger = logging.getLogger(__name__)

DELIVERY_BACKOFF = [timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10), timedelta(hours=1)]
CLAIM = timedelta(minutes=2)


# The kinds each destination may choose from: a monitor's alerts, a budget's alerts ("send a test" always
# goes). A destination's `alert_kinds` empty means every kind (the default, and what existing rows have).
MONITOR_KINDS = [Alert.Kind.RUN_FAILED, Alert.Kind.RUN_SKIPPED, Alert.Kind.TASKS_UNKNOWN]
BUDGET_KINDS = [Alert.Kind.BUDGET_WARNING, Alert.Kind.BUDGET_REACHED]


def destination_receives(destination: AlertDestination, kind: str) -> bool:
    return kind == Alert.Kind.TEST or not destination.alert_kinds or kind in destination.alert_kinds


def destination_kinds_label(destination: AlertDestination) -> str:
    """What a destination receives, for the pages."""
    if not destination.alert_kinds:
        return "every alert"
    labels = dict(Alert.Kind.choices)
    return ", ".join(str(labels.get(kind, kind)) for kind in destination.alert_kinds)


def alert_raise(*, key: str, kind: str, message: str, monitor=None, budget=None, run=None) -> Alert | None:
    """Record the alert `key` once and plan its deliveries; None if it was raised before."""
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                key=key[:200], kind=kind, message=message, monitor=monitor, budget=budget, run=run
            )
    except IntegrityError:
        return None
    destinations = AlertDestination.objects.none()
    if monitor is not None:
        destinations |= AlertDestination.objects.filter(monitor=monitor)
    if budget is not None:
        destinations |= AlertDestination.objects.filter(budget=budget)
    chosen = [d for d in destinations if destination_receives(d, kind)]
    deliveries_plan(alert=alert, destinations=chosen)
    return alert


def deliveries_plan(*, alert: Alert, destinations: list[AlertDestination]) -> list[AlertDelivery]:
    now = timezone.now()
    deliveries = AlertDelivery.objects.bulk_create(
        [
            AlertDelivery(alert=alert, destination=d, target=str(d)[:500], next_attempt_at=now)
            for d in destinations
        ]
    )
    for delivery in deliveries:
        transaction.on_commit(partial(_enqueue, delivery.pk))
    return deliveries


def alert_test(*, destination: AlertDestination) -> AlertDelivery:
    """The "send a test" button: a test alert to this one destination, delivered at once."""
    alert = Alert.objects.create(
        key=f"test:{destination.pk}:{timezone.now().timestamp()}",
        kind=Alert.Kind.TEST,
        message=f"A test alert for {destination}.",
        monitor=destination.monitor,
        budget=destination.budget,
    )
    delivery = AlertDelivery.objects.create(
        alert=alert, destination=destination, target=str(destination)[:500], next_attempt_at=timezone.now()
    )
    delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    return delivery


def _enqueue(delivery_id: int, run_after=None) -> None:
    try:
        job = deliver_alert.using(run_after=run_after) if run_after else deliver_alert
        job.enqueue(delivery_id=delivery_id)
    except Exception:  # the scheduler delivers what is due anyway
        logger.exception("Could not enqueue alert delivery %s", delivery_id)


@task
def deliver_alert(*, delivery_id: int) -> None:
    delivery_attempt(delivery_id=delivery_id)


def deliveries_due(*, limit: int = 100) -> int:
    """Attempt every pending delivery that is due; return how many were attempted."""
    due = list(
        AlertDelivery.objects.filter(state=AlertDelivery.State.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(delivery_attempt(delivery_id=pk) for pk in due)


def delivery_attempt(*, delivery_id: int) -> bool:
    """Claim and send one delivery; False if it was not due or another process has it."""
    now = timezone.now()
    claimed = AlertDelivery.objects.filter(
        pk=delivery_id, state=AlertDelivery.State.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=now + CLAIM)
    if not claimed:
        return False
    delivery = AlertDelivery.objects.select_related("alert__monitor", "alert__budget", "destination").get(
        pk=delivery_id
    )
    try:
        _send(delivery)
    except (WebhookError, ValidationError, CredentialKeyError, OSError) as exc:
        error = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        delivery.attempts += 1
        delivery.last_error = error[:500]
        # A test is answered on the page at once: sent again later it would be stale (the webhook fixed).
        if delivery.attempts > len(DELIVERY_BACKOFF) or delivery.alert.kind == Alert.Kind.TEST:
            delivery.state, delivery.next_attempt_at = AlertDelivery.State.FAILED, None
        else:
            delivery.next_attempt_at = timezone.now() + DELIVERY_BACKOFF[delivery.attempts - 1]
            transaction.on_commit(partial(_enqueue, delivery.pk, delivery.next_attempt_at))
        delivery.save(update_fields=["attempts", "last_error", "state", "next_attempt_at"])
        return True
    delivery.attempts += 1
    delivery.state, delivery.sent_at, delivery.next_attempt_at = (
        AlertDelivery.State.SENT,
        timezone.now(),
        None,
    )
    delivery.last_error = ""
    delivery.save(update_fields=["attempts", "state", "sent_at", "next_attempt_at", "last_error"])
    return True


def _send(delivery: AlertDelivery) -> None:
    destination, alert = delivery.destination, delivery.alert
    if destination is None:
        raise ValidationError("Not sent: the destination was removed.")
    subject = f"[LLM Responses] {alert.title}"
    link = _link(alert)
    if destination.kind == AlertDestination.Kind.EMAIL:
        body = f"{alert.message}\n\n{link}".strip()
        send_mail(subject, body, None, emails_parse(destination.emails))
        return
    url = destination.get_url()
    webhook_url_check(url)  # again: the name may resolve elsewhere now
    if destination.kind == AlertDestination.Kind.SLACK:
        text = f"*{alert.title}*: {alert.message}" + (f" <{link}|Open>" if link else "")
        webhook_post(url, {"text": text}, address_refusal=webhook_address_refusal)
        return
    webhook_post(
        url,
        {
            "alert": alert.kind,
            "title": alert.title,
            "message": alert.message,
            "monitor": alert.monitor.name if alert.monitor else None,
            "budget": str(alert.budget) if alert.budget else None,
            "run_id": str(alert.run_id) if alert.run_id else None,
            "created_at": alert.created_at.isoformat(),
            "url": link or None,
        },
        address_refusal=webhook_address_refusal,
    )


def _link(alert: Alert) -> str:
    base = getattr(settings, "PUBLIC_BASE_URL", "") or ""
    if not base:
        return ""
    if alert.monitor_id:
        return base.rstrip("/") + reverse("monitors:detail", args=[alert.monitor.slug])
    return base.rstrip("/") + reverse("spend:budget_list")
