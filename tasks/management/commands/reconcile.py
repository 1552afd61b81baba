from django.core.management.base import BaseCommand
from django.template.defaultfilters import pluralize

from tasks.spend.provisional import provisional_settle
from tasks.submission.reconcile import reconcile_lost_tasks, tasks_ready_reconcile


class Command(BaseCommand):
    help = (
        "Match tasks whose reply was lost against tasks_ready (DataForSEO-direct credentials only) and "
        "settle provisional spend older than the settlement horizon (docs/spend.md). Safe to run at any "
        "time and twice."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help="Leave it to the worker: run the job now; it comes back every 10 minutes.",
        )

    def handle(self, *args, enqueue=False, **options):
        if enqueue:
            reconcile_lost_tasks.enqueue()
            self.stdout.write("The worker will reconcile lost replies now and every 10 minutes.")
            return
        report = tasks_ready_reconcile()
        self.stdout.write(
            f"tasks_ready: {report.calls} call{pluralize(report.calls)}, "
            f"{len(report.completed)} task{pluralize(report.completed)} reconciled, "
            f"{len(report.ambiguous)} left as ambiguous."
        )
        if report.skipped_credentials:
            self.stdout.write(
                f"{len(report.skipped_credentials)} AIsa credential{pluralize(report.skipped_credentials)} "
                f"{pluralize(report.skipped_credentials, 'has,have')} tasks whose reply was lost: "
                "AIsa's tasks_ready may list other keys' tasks, so those are left to callbacks and admins."
            )
        settled = provisional_settle()
        self.stdout.write(f"Settled the provisional spend of {settled} task{pluralize(settled)}.")
