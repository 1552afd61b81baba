import math
from collections import defaultdict

from django.core.management.base import BaseCommand
from django.template.defaultfilters import pluralize
from django.utils import timezone

from tasks.models import Task
from tasks.spend.budgets import SUBMISSION_LIFETIME
from tasks.submission import collection
from tasks.submission.chunks import chunks_next_ready_at, chunks_sweep
from tasks.submission.collection import COLLECT_GROUP
from tasks.submission.live import live_next_ready_at, send_live_at
from tasks.submission.recording import tasks_mark_interrupted
from tasks.submission.workers import send_chunks_at


class Command(BaseCommand):
    help = (
        "Re-arm the polling of every submitted or pending task, so no task is forgotten after the worker "
        "was down, killed mid-poll, or its queue was lost; and mark long-queued submissions as unknown. "
        "Safe to run at any time, also while another worker still polls."
    )

    def handle(self, *args, **options):
        # Every waiting task gets a poll now, or when its next poll is due: a poll in flight (or one whose
        # worker was killed) holds its slot until its lease runs out (services.poll_lease), and the
        # conditional claim in collection._poll_one makes sure a chain still alive and this one never both
        # fetch: whichever claims first polls, the other drops the task.
        now = timezone.now()
        waiting = Task.objects.filter(
            status__in=[Task.Status.SUBMITTED, Task.Status.PENDING], upstream_task_id__isnull=False
        ).order_by("next_poll_at", "pk")
        by_delay: dict[int, list[str]] = defaultdict(list)
        for pk, next_poll_at in waiting.values_list("pk", "next_poll_at"):
            wait = (next_poll_at - now).total_seconds() if next_poll_at else 0
            # Never before the task is due (a chain that comes early drops it), and in whole minutes, so
            # the tasks of one chunk, due within moments of each other, go on in one chain.
            by_delay[60 * math.ceil(wait / 60) if wait > 0 else 0].append(str(pk))
        for delay, task_ids in by_delay.items():
            for start in range(0, len(task_ids), COLLECT_GROUP):
                collection.schedule_collect(task_ids[start : start + COLLECT_GROUP], delay=delay)
        count = sum(len(task_ids) for task_ids in by_delay.values())
        due_now = len(by_delay.get(0, []))
        self.stdout.write(
            f"Re-armed the collection of {count} waiting task{pluralize(count)}, {due_now} due now."
        )

        # A row still `queued` long after it was created means the process stopped between committing
        # it and recording the upstream's answer: it may or may not have been sent. Say so; never resend.
        # (Tasks in a chunk are the workers' to send: never marked here.)
        stale = Task.objects.filter(
            status=Task.Status.QUEUED,
            chunk__isnull=True,
            created_at__lt=timezone.now() - SUBMISSION_LIFETIME,
        )
        stale_tasks = list(stale)
        if stale_tasks:
            tasks_mark_interrupted(tasks=stale_tasks)
        self.stdout.write(
            f"Marked {len(stale_tasks)} interrupted submission{pluralize(stale_tasks)} as unknown."
        )
        # Chunks whose worker was killed: back to planned if their POST never started, else unknown; then
        # a sending job for whatever waits.
        requeued, unknown = chunks_sweep()
        self.stdout.write(
            f"Requeued {requeued} chunk{pluralize(requeued)} never sent; "
            f"marked {unknown} in-flight chunk{pluralize(unknown)} unknown."
        )
        next_at = chunks_next_ready_at()
        if next_at is not None:
            send_chunks_at(next_at)
        live_next_at = live_next_ready_at()
        if live_next_at is not None:
            send_live_at(live_next_at)
