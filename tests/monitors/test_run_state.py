"""A run's state on the monitor pages is what its tasks say when the page is shown: a run whose tasks
have all finished reads Done (and a failed one can be retried) without waiting for a scheduler's tick."""

import pytest
from django.urls import reverse

from tasks.models import Alert, MonitorRun, Task
from tasks.monitors.runs import run_now
from tests.monitors.factories import make_monitor

pytestmark = pytest.mark.django_db


def finished_before_a_tick(run, *, failed: int = 0) -> None:
    """Every task of the run final (`failed` of them failed), and no tick has read it: it is stored Sent."""
    tasks = list(Task.objects.filter(batch=run.batch).order_by("created_at"))
    Task.objects.filter(pk__in=[t.pk for t in tasks[failed:]]).update(
        status=Task.Status.COMPLETED, spend_is_final=True
    )
    Task.objects.filter(pk__in=[t.pk for t in tasks[:failed]]).update(
        status=Task.Status.FAILED, spend=0, spend_is_final=True
    )
    assert MonitorRun.objects.get(pk=run.pk).state == MonitorRun.State.SENT


def test_a_run_whose_tasks_all_completed_reads_done_before_any_tick(
    member_client, credential, catalog, member_user
):
    monitor = make_monitor(credential=credential, owner=member_user)
    run = run_now(monitor=monitor, user=member_user)[0]
    finished_before_a_tick(run)

    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    listing = member_client.get(reverse("monitors:list")).content.decode()

    runs = page[page.index('id="runs-h"') :]
    assert '<span class="badge run-done">Done</span>' in runs and "run-sent" not in runs
    assert "runs: Done 1</p>" in " ".join(page.split())
    assert '<span class="run-done">Done</span>' in listing


def test_a_run_with_a_task_still_in_flight_reads_sent(member_client, credential, catalog, member_user):
    monitor = make_monitor(credential=credential, owner=member_user)
    run = run_now(monitor=monitor, user=member_user)[0]
    finished_before_a_tick(run)
    Task.objects.filter(pk=Task.objects.filter(batch=run.batch).first().pk).update(status=Task.Status.UNKNOWN)

    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    listing = member_client.get(reverse("monitors:list")).content.decode()

    assert '<span class="badge run-sent">Sent</span>' in page
    assert '<span class="run-sent">Sent</span>' in listing


def test_a_run_whose_last_tasks_failed_before_a_tick_offers_retry_and_retries_them(
    member_client, credential, catalog, member_user
):
    monitor = make_monitor(credential=credential, owner=member_user)
    run = run_now(monitor=monitor, user=member_user)[0]
    finished_before_a_tick(run, failed=2)

    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    assert '<span class="badge run-done">Done</span>' in page and "Retry 2 failed" in page
    response = member_client.post(reverse("monitors:run_retry", args=[monitor.slug, run.pk]), follow=True)

    assert "Retry started: 2 tasks planned" in response.content.decode()
    retry = MonitorRun.objects.get(retry_of=run)
    assert retry.state == MonitorRun.State.SENT and Task.objects.filter(batch=retry.batch).count() == 2
    run.refresh_from_db()
    assert run.state == MonitorRun.State.DONE and run.failed_count == 2
    assert Alert.objects.filter(run=run, kind=Alert.Kind.RUN_FAILED).count() == 1  # as a tick raises it


def test_a_done_run_whose_tasks_failed_after_its_tick_is_retried_as_its_page_offers(
    member_client, credential, catalog, member_user
):
    """The page reads a run's failed count from its tasks; Retry read the count the tick last wrote (0)
    and answered 'Only a failed run can be retried.' beside a 'Retry 2 failed' button."""
    monitor = make_monitor(credential=credential, owner=member_user)
    run = run_now(monitor=monitor, user=member_user)[0]
    finished_before_a_tick(run, failed=2)
    MonitorRun.objects.filter(pk=run.pk).update(state=MonitorRun.State.DONE, failed_count=0)

    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    assert "Retry 2 failed" in page
    response = member_client.post(reverse("monitors:run_retry", args=[monitor.slug, run.pk]), follow=True)

    assert "Retry started: 2 tasks planned" in response.content.decode()
    assert MonitorRun.objects.get(retry_of=run).task_count == 2
