"""Background jobs (django.tasks, run by django-tasks-db's `db_worker`).

Jobs take ids, not objects, and are safe to run twice; the logic lives in tasks.services.
"""

from datetime import timedelta

from django.tasks import task
from django.utils import timezone


@task
def collect_results(task_ids: list[str]) -> None:
    """One poll of submitted tasks (one task_post chunk); schedules the next until all are final."""
    from tasks.services import tasks_poll

    tasks_poll(task_ids=task_ids)


@task
def fetch_after_callback(task_id: str) -> None:
    """A pingback arrived: one task_get with the upstream id we stored (never the one in the URL)."""
    from tasks.models import TaskEvent
    from tasks.services import task_fetch

    task_fetch(task_id=task_id, source=TaskEvent.Kind.CALLBACK)


@task
def refresh_model_catalog(credential_id: int) -> None:
    """Refresh both providers' model lists with a credential (the `models` endpoint is free)."""
    from tasks.models import Credential, Provider
    from tasks.services import catalog_refresh

    credential = Credential.objects.filter(pk=credential_id, is_active=True).first()
    if credential is None:
        return
    for provider in Provider.values:
        catalog_refresh(credential=credential, provider=provider)


def schedule_collect(task_ids: list[str], *, delay: float) -> None:
    collect_results.using(run_after=timezone.now() + timedelta(seconds=delay)).enqueue(task_ids)


@task
def rollup_spend_hourly() -> None:
    """Roll up the spend of newly settled days, and come back at ten past the next hour.

    Re-arms itself first, so a failed rollup is retried an hour later; only one chain re-arms (see
    spend_rollup.rollup_claim_next_run), so enqueueing it again at every worker start is harmless.
    """
    from tasks.spend_rollup import spend_rollup

    schedule_rollup()
    spend_rollup()


def schedule_rollup() -> None:
    """Enqueue the next hourly rollup unless a run is already planned."""
    from django.db import transaction

    from tasks.spend_rollup import rollup_claim_next_run

    # The claim and the job row commit together (the job queue is in the same database).
    with transaction.atomic():
        run_after = rollup_claim_next_run()
        if run_after is not None:
            rollup_spend_hourly.using(run_after=run_after).enqueue()


RECONCILE_JOB = "reconcile_lost_tasks"


@task
def reconcile_lost_tasks() -> None:
    """Every 10 minutes: match tasks whose reply was lost against tasks_ready (DataForSEO direct), and
    settle provisional spend that can no longer change (tasks.submission.reconcile).

    Re-arms itself first, and only with a claim on its JobSchedule row, so enqueueing it again at every
    worker start is harmless.
    """
    from tasks.submission.reconcile import provisional_settle, tasks_ready_reconcile

    schedule_reconcile()
    tasks_ready_reconcile()
    provisional_settle()


def schedule_reconcile() -> None:
    """Enqueue the next reconciliation run unless one is already planned."""
    from django.db import transaction

    from tasks.submission.reconcile import reconcile_claim_next_run

    with transaction.atomic():
        run_after = reconcile_claim_next_run()
        if run_after is not None:
            reconcile_lost_tasks.using(run_after=run_after).enqueue()
