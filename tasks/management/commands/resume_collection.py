from django.core.management.base import BaseCommand
from django.utils import timezone

from tasks import jobs
from tasks.budgets import SUBMISSION_LIFETIME, budget_holds_expire
from tasks.models import Task
from tasks.services import COLLECT_GROUP, tasks_mark_interrupted


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
        task_ids = [str(pk) for pk in overdue.values_list("pk", flat=True)]
        Task.objects.filter(pk__in=task_ids).update(next_poll_at=timezone.now())
        for start in range(0, len(task_ids), COLLECT_GROUP):
            jobs.schedule_collect(task_ids[start : start + COLLECT_GROUP], delay=0)
        self.stdout.write(f"Scheduled {len(task_ids)} overdue task(s) for collection.")

        # A row still `queued` long after it was created means the process stopped between committing
        # it and recording the upstream's answer: it may or may not have been sent. Say so; never resend.
        stale = Task.objects.filter(
            status=Task.Status.QUEUED, created_at__lt=timezone.now() - SUBMISSION_LIFETIME
        )
        stale_tasks = list(stale)
        if stale_tasks:
            tasks_mark_interrupted(tasks=stale_tasks)
        self.stdout.write(f"Marked {len(stale_tasks)} interrupted submission(s) as unknown.")
        # The budget held for the chunks such a submission never wrote stopped counting; tidy it away.
        self.stdout.write(f"Dropped {budget_holds_expire()} expired budget hold(s).")
