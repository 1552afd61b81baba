from django.core.management.base import BaseCommand
from django.utils import timezone

from tasks import jobs
from tasks.models import Task


class Command(BaseCommand):
    help = (
        "Schedule a poll for every submitted or pending task whose next poll is overdue, so no task is "
        "forgotten after the worker was down or its queue was lost. Safe to run at any time."
    )

    def handle(self, *args, **options):
        overdue = Task.objects.filter(
            status__in=[Task.Status.SUBMITTED, Task.Status.PENDING],
            upstream_task_id__isnull=False,
            next_poll_at__lt=timezone.now() - timezone.timedelta(minutes=1),
        )
        count = 0
        for task_id in overdue.values_list("pk", flat=True).iterator():
            Task.objects.filter(pk=task_id).update(next_poll_at=timezone.now())
            jobs.schedule_collect(str(task_id), delay=0)
            count += 1
        self.stdout.write(f"Scheduled {count} overdue task(s) for collection.")
