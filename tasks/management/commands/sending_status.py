from django.core.management.base import BaseCommand
from django.template.defaultfilters import pluralize
from django.utils import timezone

from tasks.submission.queue import queue_state


class Command(BaseCommand):
    help = (
        "Show the sending queue: chunks waiting, ready, sending, rate-limited and with a lost reply; the "
        "workers seen in the last minute; each credential's limit; the chunks waiting or in flight."
    )

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=50, help="How many chunks to list (default 50).")

    def handle(self, *args, limit: int, **options):
        queue = queue_state(chunk_limit=max(limit, 0))
        now = timezone.now()
        out = self.stdout.write
        oldest = (
            f"{(now - queue.oldest_waiting).total_seconds():.0f} s ago" if queue.oldest_waiting else "none"
        )
        out(
            f"Chunks: {queue.planned} waiting ({queue.ready} ready now, {queue.delayed} delayed, "
            f"{queue.rate_limited} rate-limited), {queue.sending} sending, "
            f"{queue.unknown} with a lost reply. Oldest waiting: {oldest}."
        )
        out(f"Workers seen in the last minute: {len(queue.workers)}")
        for worker in queue.workers:
            out(f"  {worker.name}  last seen {(now - worker.last_seen).total_seconds():.0f} s ago")
        if queue.no_worker:
            out(
                "Chunks have been ready to send for over a minute and no worker is running: "
                "start one with `bin/entrypoint worker`."
            )
        for row in queue.credentials:
            limit_text = f"{row.calls_per_minute}/min" if row.calls_per_minute else "no limit of ours"
            limited = f", rate-limited until {row.limited_until:%H:%M:%S}" if row.limited_until else ""
            out(
                f"Credential {row.credential.name}: {row.planned} waiting, {row.sending} sending, "
                f"{row.unknown} lost; {limit_text}{limited}"
            )
        for chunk in queue.chunks:
            started = f" POST started {chunk.post_started_at:%H:%M:%S}" if chunk.post_started_at else ""
            owner = f" by {chunk.claimed_by}" if chunk.claimed_by else ""
            tasks = f"task{pluralize(chunk.task_count)}"
            error = f"  last error: {chunk.last_error[:120]}" if chunk.last_error else ""
            out(
                f"  {chunk.pk}  {chunk.state:<8} {chunk.task_count:>3} {tasks:<5}  not before "
                f"{chunk.not_before:%H:%M:%S}{owner}{started}{error}"
            )
