from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import pluralize

from tasks.spend import jobs
from tasks.spend.rollup import rollup_first_day, spend_rollup


class Command(BaseCommand):
    help = (
        "Roll up the spend of every settled day (ended 30+ minutes ago, nothing in flight) not rolled "
        "up yet, for the spend page. Safe to run at any time and twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("--through", type=date.fromisoformat, help="Stop at this day (YYYY-MM-DD).")
        parser.add_argument(
            "--since", type=date.fromisoformat, help="Rebuild the days from this one, even if rolled up."
        )
        parser.add_argument("--rebuild", action="store_true", help="Rebuild every day.")
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help="Leave it to the worker: run the hourly job now; it comes back every hour.",
        )

    def handle(self, *args, through=None, since=None, rebuild=False, enqueue=False, **options):
        if enqueue:
            jobs.rollup_spend_hourly.enqueue()
            self.stdout.write("The worker will roll up the spend now and after every midnight.")
            return
        if rebuild and since:
            raise CommandError("Give --rebuild or --since, not both.")
        if rebuild:
            since = rollup_first_day()
        result = spend_rollup(through=through, since=since)
        if result.rolled:
            self.stdout.write(
                f"Rolled up {len(result.rolled)} day{pluralize(result.rolled)}: "
                f"{result.rolled[0]} to {result.rolled[-1]}."
            )
        else:
            self.stdout.write("No day to roll up.")
        self.stdout.write(f"The rollup covers the days through {result.through or 'none yet'}.")
        if result.stopped_at:
            self.stderr.write(
                f"Stopped at {result.stopped_at}: some of its tasks are still active past the 72-hour limit "
                "(is the worker running? `manage.py resume_collection` re-arms their polls)."
            )
