"""The scheduler as a periodic background job (for deployments that run only the worker)."""

from datetime import timedelta

from django.db import transaction
from django.tasks import task
from django.utils import timezone

from tasks.models import JobSchedule
from tasks.monitors.scheduler import scheduler_tick

JOB_NAME = "monitors_tick"
EVERY = timedelta(minutes=1)


@task
def monitors_tick() -> None:
    """Tick the scheduler and come back in a minute. Re-arms first with a claim on its JobSchedule row,
    so enqueueing it again at every worker start never starts a second chain."""
    schedule_monitors_tick()
    scheduler_tick()


def schedule_monitors_tick() -> None:
    now = timezone.now()
    with transaction.atomic():
        row, _ = JobSchedule.objects.select_for_update().get_or_create(name=JOB_NAME)
        if row.next_run_at is not None and row.next_run_at > now:
            return
        row.next_run_at, row.last_run_at = now + EVERY, now
        row.save(update_fields=["next_run_at", "last_run_at"])
        monitors_tick.using(run_after=row.next_run_at).enqueue()
