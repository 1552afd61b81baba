"""Writes of the monitor pages: create, edit (with its audit trail), pause/resume/archive, destinations."""

import contextlib
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from tasks.models import AlertDelivery, AlertDestination, Budget, Monitor
from tasks.monitors.cadence import CadenceError, every_n_days_start
from tasks.monitors.scheduler import monitor_schedule
from tasks.monitors.slugs import slug_taken
from tasks.team.audit import audit_changes, audit_record

# The fields whose change is recorded in the monitor's history (the audit log).
AUDITED = [
    "name", "description", "template_version_id", "rows_text", "request_fields", "targets", "tag", "labels",
    "cadence", "time_of_day", "minute", "weekdays", "interval_days", "cron", "time_zone", "start_date",
    "end_date", "cap_per_run", "cap_per_month", "state",
]  # fmt: skip


def _snapshot(monitor: Monitor) -> dict:
    return {name: getattr(monitor, name) for name in AUDITED}


def monitor_save(
    *,
    actor,
    unsaved: Monitor,
    monitor: Monitor | None = None,
    description: str = "",
    now: datetime | None = None,
) -> Monitor:
    """Create the monitor `unsaved` describes, or apply it to `monitor`; record what changed and set its next
    slot from now (an edit never makes up for slots before it). "Every N days" without a start date is given
    the day of its first run, so the days are counted from it and stay so."""
    now = now or timezone.now()
    if unsaved.cadence == Monitor.Cadence.EVERY_N_DAYS and unsaved.start_date is None:
        with contextlib.suppress(CadenceError):  # an unknown zone cannot run at all
            unsaved.start_date = every_n_days_start(
                time_of_day=unsaved.time_of_day, time_zone=unsaved.time_zone, now=now
            )
    with transaction.atomic():
        if monitor is None:
            monitor = unsaved
            monitor.owner = actor
            monitor.slug = slugify(unsaved.name)[:150]
            monitor.description = description
            monitor.save()
            slug_taken(monitor=monitor, before=None)
            audit_record(actor=actor, action="monitor.create", obj=monitor, changes=_snapshot(monitor))
        else:
            monitor = Monitor.objects.select_for_update().get(pk=monitor.pk)
            before, slug_before = _snapshot(monitor), monitor.slug
            for name in AUDITED:
                if name != "state":
                    setattr(monitor, name, getattr(unsaved, name))
            monitor.description = description
            monitor.slug = slugify(unsaved.name)[:150]
            monitor.save()
            if monitor.slug != slug_before:  # its old address keeps leading to it
                slug_taken(monitor=monitor, before=slug_before)
            changes = audit_changes(before, _snapshot(monitor))
            if changes:
                audit_record(actor=actor, action="monitor.edit", obj=monitor, changes=changes)
        monitor_schedule(monitor=monitor, now=now)
    return monitor


def monitor_state_set(*, actor, monitor: Monitor, action: str) -> Monitor:
    """Pause, resume or archive. Resuming starts from the next slot after now; archived keeps its history."""
    state = {
        "pause": Monitor.State.PAUSED,
        "resume": Monitor.State.ACTIVE,
        "archive": Monitor.State.ARCHIVED,
    }[action]
    with transaction.atomic():
        monitor = Monitor.objects.select_for_update().get(pk=monitor.pk)
        if monitor.state == state:
            return monitor
        before = monitor.state
        monitor.state = state
        monitor.save(update_fields=["state", "updated_at"])
        monitor_schedule(monitor=monitor, now=timezone.now())
        audit_record(
            actor=actor,
            action=f"monitor.{action}",
            obj=monitor,
            changes={"state": {"from": before, "to": state}},
        )
    return monitor


def destination_add(
    *,
    actor,
    kind: str,
    emails: str = "",
    url: str = "",
    monitor: Monitor | None = None,
    budget: Budget | None = None,
    alert_kinds: list[str] | None = None,
) -> AlertDestination:
    destination = AlertDestination(
        kind=kind, monitor=monitor, budget=budget, created_by=actor, alert_kinds=alert_kinds or []
    )
    if kind == AlertDestination.Kind.EMAIL:
        destination.emails = emails
    else:
        destination.set_url(url)
    destination.save()
    audit_record(
        actor=actor,
        action="alert_destination.add",
        obj=monitor or budget,
        changes={"destination": str(destination), "alert_kinds": destination.alert_kinds or "all"},
    )
    return destination


def destination_kinds_set(*, actor, destination: AlertDestination, alert_kinds: list[str]) -> bool:
    """Choose which alert kinds a destination receives ([] = every kind); False if nothing changed."""
    before = destination.alert_kinds or []
    if before == alert_kinds:
        return False
    destination.alert_kinds = alert_kinds
    destination.save(update_fields=["alert_kinds"])
    audit_record(
        actor=actor,
        action="alert_destination.kinds",
        obj=destination.monitor or destination.budget,
        changes={
            "destination": str(destination),
            "alert_kinds": {"from": before or "all", "to": alert_kinds or "all"},
        },
    )
    return True


def destination_delete(*, actor, destination: AlertDestination) -> None:
    audit_record(
        actor=actor,
        action="alert_destination.delete",
        obj=destination.monitor or destination.budget,
        changes={"destination": str(destination)},
    )
    # Its deliveries still pending are given up now, not retried for an hour against nothing.
    destination.deliveries.filter(state=AlertDelivery.State.PENDING).update(
        state=AlertDelivery.State.FAILED,
        next_attempt_at=None,
        last_error="Not sent: the destination was removed.",
    )
    destination.delete()
