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


SEND_PRIORITY = 10  # sending goes before polls and rollups waiting in the same queue
SEND_SLICE = 60.0  # seconds one sending job runs before handing over to a new one (other jobs go between)
SEND_JOBS = 2  # sending jobs enqueued for a submission of several chunks: one per worker that may help


@task(priority=SEND_PRIORITY)
def send_chunks() -> None:
    """Send planned chunks (tasks/submission/chunks.py) for up to SEND_SLICE seconds, then hand over:
    enqueue the next job now if chunks are ready, or for when the next delay, rate limit or lease ends."""
    from tasks.submission.chunks import chunks_drain, chunks_next_ready_at

    try:
        chunks_drain(seconds=SEND_SLICE, wait_for_delayed=2.0)
    finally:  # even after an error (the database), what is left is not left without a job
        next_at = chunks_next_ready_at()
        if next_at is not None:
            send_chunks_at(next_at)


def send_chunks_soon(*, chunks: int = 1) -> None:
    """Enqueue sending jobs for a submission just committed: one per chunk up to SEND_JOBS."""
    for _ in range(min(max(chunks, 1), SEND_JOBS)):
        send_chunks.enqueue()


def send_chunks_at(when) -> None:
    """Enqueue one sending job for `when`, unless one is already waiting to run by then."""
    from django.db.models import Q
    from django.tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult, get_date_max

    waiting = DBTaskResult.objects.filter(task_path=send_chunks.module_path, status=TaskResultStatus.READY)
    if waiting.filter(Q(run_after__lte=when) | Q(run_after=get_date_max())).exists():
        return
    send_chunks.using(run_after=when).enqueue()
