"""Background jobs of spend (django.tasks): the hourly rollup."""

from django.db import transaction
from django.tasks import task

from tasks.spend.rollup import rollup_claim_next_run, spend_rollup
from tasks.visibility.rollup import visibility_rollup


@task
def rollup_spend_hourly() -> None:
    """Roll up the spend of newly settled days, and come back at ten past the next hour.

    Re-arms itself first, so a failed rollup is retried an hour later; only one chain re-arms (see
    rollup.rollup_claim_next_run), so enqueueing it again at every worker start is harmless.
    """
    schedule_rollup()
    spend_rollup()
    visibility_rollup()  # visibility's days follow the spend rollup's (tasks/visibility/rollup.py)


def schedule_rollup() -> None:
    """Enqueue the next hourly rollup unless a run is already planned."""
    # The claim and the job row commit together (the job queue is in the same database).
    with transaction.atomic():
        run_after = rollup_claim_next_run()
        if run_after is not None:
            rollup_spend_hourly.using(run_after=run_after).enqueue()
