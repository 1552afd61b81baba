from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import pluralize

from tasks.submission.chunks import chunks_requeue
from tasks.submission.live import send_live_soon
from tasks.submission.workers import send_chunks_soon


class Command(BaseCommand):
    help = (
        "Put chunks back in the queue to be sent now, only if their POST never started: delayed ones "
        "(a retry or a rate limit) and claimed ones a worker has not started posting. A chunk whose POST "
        "may have reached the upstream (reply lost, or killed mid-send) is refused: sending it again could "
        "pay twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("chunk_ids", nargs="*", help="Chunk ids (from sending_status).")
        parser.add_argument(
            "--all", action="store_true", help="Every chunk waiting or claimed whose POST never started."
        )

    def handle(self, *args, chunk_ids: list[str], all: bool, **options):
        if not chunk_ids and not all:
            raise CommandError("Name chunk ids, or pass --all.")
        requeued, refused = chunks_requeue(chunk_ids=None if all else chunk_ids)
        for chunk_id, reason in refused:
            self.stderr.write(f"Not requeued {chunk_id}: {reason}")
        self.stdout.write(f"Requeued {len(requeued)} chunk{pluralize(requeued)} to be sent now.")
        if requeued:
            send_chunks_soon(chunks=len(requeued))
            send_live_soon()  # live chunks are sent by their own loop (tasks/submission/live.py)
        if refused and not requeued:
            raise CommandError(f"Refused {len(refused)} chunk{pluralize(refused)}; nothing was requeued.")
