"""Retrying a failed run from the monitor page: one new run marked as its retry, counted against the caps,
audited; a double submit never makes two."""

from decimal import Decimal

import pytest
from django.db.models import Sum
from django.urls import reverse

from tasks.models import AuditEntry, Budget, Monitor, MonitorRun, Task
from tasks.monitors.runs import run_now
from tasks.spend.budgets import exact_usd
from tasks.upstream.providers import charge_per_task
from tests.monitors.factories import make_monitor

pytestmark = pytest.mark.django_db


def failed_run(monitor, credential, user):
    credential.is_active = False
    credential.save(update_fields=["is_active"])
    run = run_now(monitor=monitor, user=user)[0]
    assert run.state == MonitorRun.State.FAILED and "disabled" in run.reason
    credential.is_active = True
    credential.save(update_fields=["is_active"])
    return run


def test_a_failed_run_is_retried_once_however_many_times_retry_is_pressed(
    member_client, credential, catalog, member_user
):
    monitor = make_monitor(credential=credential, owner=member_user)
    failed = failed_run(monitor, credential, member_user)
    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    url = reverse("monitors:run_retry", args=[monitor.slug, failed.pk])
    assert f'action="{url}"' in page

    first = member_client.post(url, follow=True)
    second = member_client.post(url, follow=True)  # a double submit

    retry = MonitorRun.objects.get(kind=MonitorRun.Kind.RETRY)
    assert MonitorRun.objects.count() == 2
    assert retry.retry_of == failed and retry.state == MonitorRun.State.SENT
    assert Task.objects.filter(batch=retry.batch).count() == 6 and Task.objects.count() == 6
    assert "Retry started: 6 tasks" in first.content.decode()
    assert "retried already" in second.content.decode()
    assert AuditEntry.objects.filter(action="monitor.run_retry", object_id=str(monitor.pk)).count() == 1
    page = second.content.decode()
    assert "Retry of the run of" in page
    assert f'action="{url}"' not in page  # retried: no second button


def test_a_retry_is_counted_against_the_caps(member_client, credential, catalog, member_user):
    monitor = make_monitor(credential=credential, owner=member_user)
    failed = failed_run(monitor, credential, member_user)
    monitor.cap_per_run = "0.0001"
    monitor.save(update_fields=["cap_per_run"])
    response = member_client.post(reverse("monitors:run_retry", args=[monitor.slug, failed.pk]), follow=True)
    retry = MonitorRun.objects.get(kind=MonitorRun.Kind.RETRY)
    assert retry.state == MonitorRun.State.SKIPPED and "cap" in retry.reason
    assert "The retry did not run" in response.content.decode()
    assert not Task.objects.exists()


def test_only_a_failed_run_of_this_monitor_is_retried(member_client, credential, catalog, member_user):
    monitor = make_monitor(credential=credential, owner=member_user)
    other = make_monitor(credential=credential, owner=member_user, name="Other")
    sent = run_now(monitor=monitor, user=member_user)[0]
    response = member_client.post(reverse("monitors:run_retry", args=[monitor.slug, sent.pk]), follow=True)
    assert "Only a failed run can be retried." in response.content.decode()
    assert member_client.post(reverse("monitors:run_retry", args=[other.slug, sent.pk])).status_code == 404
    assert MonitorRun.objects.count() == 1


def test_a_run_whose_tasks_failed_upstream_can_be_retried(member_client, credential, catalog, member_user):
    monitor = make_monitor(credential=credential, owner=member_user)
    run = run_now(monitor=monitor, user=member_user)[0]
    Task.objects.filter(batch=run.batch).update(status=Task.Status.FAILED)
    MonitorRun.objects.filter(pk=run.pk).update(state=MonitorRun.State.DONE, failed_count=6)
    member_client.post(reverse("monitors:run_retry", args=[monitor.slug, run.pk]))
    assert MonitorRun.objects.get(kind=MonitorRun.Kind.RETRY).retry_of_id == run.pk


def test_no_one_signed_out_retries(client, credential, catalog):
    monitor = make_monitor(credential=credential)
    failed = failed_run(monitor, credential, None)
    assert client.post(reverse("monitors:run_retry", args=[monitor.slug, failed.pk])).status_code in (
        302,
        403,
    )
    assert MonitorRun.objects.count() == 1


def test_a_retry_resends_only_the_failed_tasks_as_they_were_sent(
    member_client, credential, catalog, member_user
):
    """A run of 6 tasks where 2 failed upstream: the retry pays for those 2 again, not for the 4 completed
    ones, and leaves an unknown one (perhaps charged) to reconciliation."""
    monitor = make_monitor(credential=credential, owner=member_user)
    run = run_now(monitor=monitor, user=member_user)[0]
    tasks = list(Task.objects.filter(batch=run.batch).order_by("created_at"))
    Task.objects.filter(pk__in=[t.pk for t in tasks[:3]]).update(status=Task.Status.COMPLETED)
    Task.objects.filter(pk__in=[t.pk for t in tasks[3:5]]).update(status=Task.Status.FAILED)
    Task.objects.filter(pk=tasks[5].pk).update(status=Task.Status.UNKNOWN)
    MonitorRun.objects.filter(pk=run.pk).update(state=MonitorRun.State.DONE, failed_count=2)
    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    assert "Retry 2 failed" in page

    response = member_client.post(reverse("monitors:run_retry", args=[monitor.slug, run.pk]), follow=True)

    retry = MonitorRun.objects.get(kind=MonitorRun.Kind.RETRY)
    assert retry.state == MonitorRun.State.SENT and retry.task_count == 2
    assert "Retry started: 2 tasks" in response.content.decode()
    resent = list(Task.objects.filter(batch=retry.batch).order_by("created_at"))
    assert len(resent) == 2 and Task.objects.count() == 8
    for old, new in zip(tasks[3:5], resent, strict=True):
        assert new.credential_id == old.credential_id and new.provider == old.provider
        assert new.mode == old.mode and new.tag == old.tag == monitor.tag
        assert new.request_body == old.request_body  # the same request (callbacks are off here)
    assert retry.estimated_charge == sum(t.estimated_charge for t in resent)


def test_a_retry_of_failed_tasks_on_a_disabled_credential_fails_with_the_reason(
    member_client, credential, catalog, member_user
):
    monitor = make_monitor(credential=credential, owner=member_user)
    run = run_now(monitor=monitor, user=member_user)[0]
    Task.objects.filter(batch=run.batch).update(status=Task.Status.FAILED)
    MonitorRun.objects.filter(pk=run.pk).update(state=MonitorRun.State.DONE, failed_count=6)
    credential.is_active = False
    credential.save(update_fields=["is_active"])
    member_client.post(reverse("monitors:run_retry", args=[monitor.slug, run.pk]))
    retry = MonitorRun.objects.get(kind=MonitorRun.Kind.RETRY)
    assert retry.state == MonitorRun.State.FAILED and "disabled" in retry.reason
    assert Task.objects.count() == 6


def failed_after_some_were_charged(monitor, user):
    """A run of 6 tasks: 3 completed, 2 failed (one refused at post, free; one accepted and charged
    $0.0102, then no result after 72 hours), and the run done."""
    run = run_now(monitor=monitor, user=user)[0]
    tasks = list(Task.objects.filter(batch=run.batch).order_by("created_at"))
    Task.objects.filter(pk__in=[t.pk for t in tasks[:3]]).update(status=Task.Status.COMPLETED)
    Task.objects.filter(pk=tasks[3].pk).update(
        status=Task.Status.FAILED, charged=0, spend=0, spend_is_final=True
    )
    Task.objects.filter(pk=tasks[4].pk).update(
        status=Task.Status.FAILED, charged=Decimal("0.0102"), spend=Decimal("0.0102")
    )
    MonitorRun.objects.filter(pk=run.pk).update(state=MonitorRun.State.DONE, failed_count=2)
    return run, tasks[3:5]


def test_the_retry_button_says_what_it_sends_what_it_costs_and_what_was_paid_already(
    member_client, credential, catalog, member_user
):
    monitor = make_monitor(credential=credential, owner=member_user)
    run, failed = failed_after_some_were_charged(monitor, member_user)
    charge = sum(charge_per_task(mode=task.mode) for task in failed)

    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()

    note = (
        f"Sends 2 tasks again, up to {exact_usd(charge)}. 1 of these was accepted and charged $0.0102 "
        "before it failed; retrying pays again."
    )
    assert note in page
    assert f'aria-describedby="retry-note-{run.pk}"' in page and f'id="retry-note-{run.pk}"' in page
    question = f"Retry 2 failed tasks for up to {exact_usd(charge)}? 1 of these was accepted and charged"
    assert f'data-confirm="{question}' in page

    response = member_client.post(reverse("monitors:run_retry", args=[monitor.slug, run.pk]), follow=True)
    assert f"Retry started: 2 tasks planned, up to {exact_usd(charge)}" in response.content.decode()


def test_a_retry_of_tasks_refused_at_post_says_its_cost_and_asks_nothing(
    member_client, credential, catalog, member_user
):
    monitor = make_monitor(credential=credential, owner=member_user)
    _run, failed = failed_after_some_were_charged(monitor, member_user)
    Task.objects.filter(pk=failed[1].pk).update(charged=None, spend=0, spend_is_final=True)
    charge = sum(charge_per_task(mode=task.mode) for task in failed)

    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()

    assert f"Sends 2 tasks again, up to {exact_usd(charge)}.</div>" in page
    assert "retrying pays again" not in page and 'data-confirm="Retry' not in page


def test_the_retry_of_a_run_that_wrote_nothing_says_it_sends_every_task_of_the_monitor(
    member_client, credential, catalog, member_user
):
    monitor = make_monitor(credential=credential, owner=member_user)
    failed_run(monitor, credential, member_user)
    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    charge = 6 * charge_per_task(mode="task_post")
    assert f"Sends every task of the monitor (6), up to {exact_usd(charge)}." in page


def test_a_retry_is_held_to_the_budgets_like_any_run(member_client, credential, catalog, member_user):
    monitor = make_monitor(credential=credential, owner=member_user)
    run, _failed = failed_after_some_were_charged(monitor, member_user)
    Budget.objects.create(
        scope=Budget.Scope.TAG, tag=monitor.tag, monthly_limit=limit_below_one_more_task(monitor)
    )

    response = member_client.post(reverse("monitors:run_retry", args=[monitor.slug, run.pk]), follow=True)

    retry = MonitorRun.objects.get(kind=MonitorRun.Kind.RETRY)
    assert retry.state == MonitorRun.State.SKIPPED and "would be exceeded" in retry.reason
    assert "The retry did not run" in response.content.decode()
    assert Task.objects.count() == 6


def test_a_retry_after_the_tag_was_changed_is_held_to_the_budget_of_the_tag_its_tasks_carry(
    member_client, credential, catalog, member_user
):
    """The retry resends the failed requests as they were sent, so under the tag they had: that tag's
    budget is the one they spend, and the one checked, not the monitor's new tag's."""
    monitor = make_monitor(credential=credential, owner=member_user)
    run, _failed = failed_after_some_were_charged(monitor, member_user)
    old_tag = monitor.tag
    Budget.objects.create(
        scope=Budget.Scope.TAG, tag=old_tag, monthly_limit=limit_below_one_more_task(monitor)
    )
    Monitor.objects.filter(pk=monitor.pk).update(tag="hotels-renamed")

    member_client.post(reverse("monitors:run_retry", args=[monitor.slug, run.pk]))

    retry = MonitorRun.objects.get(kind=MonitorRun.Kind.RETRY)
    assert retry.state == MonitorRun.State.SKIPPED and f"tag {old_tag} would be exceeded" in retry.reason
    assert Task.objects.count() == 6


def limit_below_one_more_task(monitor):
    """A limit the monitor's tag has already used up but for less than one more task."""
    spent = Task.objects.filter(tag=monitor.tag).aggregate(total=Sum("spend"))["total"]
    return spent + charge_per_task(mode="task_post") / 2


def test_retrying_a_retry_that_wrote_nothing_resends_only_the_first_runs_failed_tasks(
    member_client, credential, catalog, member_user
):
    """A run with 2 failed tasks; its retry failed before writing any (the credential was disabled); the
    retry of that retry sends those 2 tasks, not the monitor's 6 (4 of which completed and were paid)."""
    monitor = make_monitor(credential=credential, owner=member_user)
    run, failed = failed_after_some_were_charged(monitor, member_user)
    credential.is_active = False
    credential.save(update_fields=["is_active"])
    member_client.post(reverse("monitors:run_retry", args=[monitor.slug, run.pk]))
    first_retry = MonitorRun.objects.get(retry_of=run)
    assert first_retry.state == MonitorRun.State.FAILED and not first_retry.batch_id
    credential.is_active = True
    credential.save(update_fields=["is_active"])
    charge = sum(charge_per_task(mode=task.mode) for task in failed)

    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    assert f"Sends 2 tasks again, up to {exact_usd(charge)}. 1 of these was accepted" in page
    member_client.post(reverse("monitors:run_retry", args=[monitor.slug, first_retry.pk]))

    second_retry = MonitorRun.objects.get(retry_of=first_retry)
    assert second_retry.state == MonitorRun.State.SENT and second_retry.task_count == 2
    resent = Task.objects.filter(batch=second_retry.batch)
    assert sorted(resent.values_list("user_prompt", "model_name")) == sorted(
        (task.user_prompt, task.model_name) for task in failed
    )
    assert Task.objects.count() == 8


def test_a_retry_skipped_for_a_budget_can_be_retried_once_the_budget_allows(
    member_client, credential, catalog, member_user
):
    monitor = make_monitor(credential=credential, owner=member_user)
    run, _failed = failed_after_some_were_charged(monitor, member_user)
    budget = Budget.objects.create(
        scope=Budget.Scope.TAG, tag=monitor.tag, monthly_limit=limit_below_one_more_task(monitor)
    )
    member_client.post(reverse("monitors:run_retry", args=[monitor.slug, run.pk]))
    skipped = MonitorRun.objects.get(retry_of=run)
    assert skipped.state == MonitorRun.State.SKIPPED
    Budget.objects.filter(pk=budget.pk).update(monthly_limit=Decimal("100"))

    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    url = reverse("monitors:run_retry", args=[monitor.slug, skipped.pk])
    assert f'action="{url}"' in page and "Sends 2 tasks again" in page
    assert 'data-confirm="Retry 2 failed tasks for up to' in page  # one of them was paid already
    member_client.post(url)

    again = MonitorRun.objects.get(retry_of=skipped)
    assert again.state == MonitorRun.State.SENT and again.task_count == 2
    assert Task.objects.count() == 8


def test_the_retry_line_says_when_a_budget_would_skip_it_now(member_client, credential, catalog, member_user):
    monitor = make_monitor(credential=credential, owner=member_user)
    _run, failed = failed_after_some_were_charged(monitor, member_user)
    limit = limit_below_one_more_task(monitor)
    Budget.objects.create(scope=Budget.Scope.TAG, tag=monitor.tag, monthly_limit=limit)
    charge = sum(charge_per_task(mode=task.mode) for task in failed)
    spent = Task.objects.filter(tag=monitor.tag).aggregate(total=Sum("spend"))["total"]

    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()

    assert (
        f"Sends 2 tasks again, up to {exact_usd(charge)}. It would be skipped now: the budget of tag "
        f"“{monitor.tag}” has {exact_usd(limit - spent)} left this month and this retry needs "
        f"{exact_usd(charge)}. 1 of these was accepted"
    ) in page


def test_the_retry_line_says_when_the_monitors_cap_would_skip_it_now(
    member_client, credential, catalog, member_user
):
    monitor = make_monitor(credential=credential, owner=member_user)
    _run, failed = failed_after_some_were_charged(monitor, member_user)
    Monitor.objects.filter(pk=monitor.pk).update(cap_per_run=Decimal("0.01"))
    charge = sum(charge_per_task(mode=task.mode) for task in failed)

    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()

    assert (
        f"It would be skipped now: this run would cost up to {exact_usd(charge)}, over the monitor's cap "
        "of $0.0100 per run. 1 of these"
    ) in page.replace("&#x27;", "'")


def test_a_lost_reply_settled_as_charged_is_named_as_paid_for_by_its_retry(
    member_client, credential, catalog, member_user
):
    """A task whose reply was lost and never reconciled is settled after 30 days as charged at its
    estimate, and failed: it has no charge at post, but the spend counts it as paid, so a retry of it
    pays again and says so."""
    monitor = make_monitor(credential=credential, owner=member_user)
    run = run_now(monitor=monitor, user=member_user)[0]
    tasks = list(Task.objects.filter(batch=run.batch).order_by("created_at"))
    Task.objects.filter(pk__in=[t.pk for t in tasks[1:]]).update(status=Task.Status.COMPLETED)
    Task.objects.filter(pk=tasks[0].pk).update(
        status=Task.Status.FAILED, charged=None, spend=Decimal("0.0102"), spend_is_final=True
    )
    MonitorRun.objects.filter(pk=run.pk).update(state=MonitorRun.State.DONE, failed_count=1)

    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()

    assert "1 of these was counted as charged $0.0102 (its reply was lost, then settled)" in page
    assert 'data-confirm="Retry 1 failed task for up to' in page


def test_after_the_tag_was_changed_the_retry_line_says_the_old_tag_and_its_budget_pay_for_it(
    member_client, credential, catalog, member_user
):
    """A retry belongs to the run it retries: its tasks go again under the tag they were sent with. The
    page says so beside the button, and which tag's budget pays, before anyone presses it."""
    monitor = make_monitor(credential=credential, owner=member_user)
    run, _failed = failed_after_some_were_charged(monitor, member_user)
    old_tag = monitor.tag
    Budget.objects.create(scope=Budget.Scope.TAG, tag=old_tag, monthly_limit=Decimal("1"))
    Budget.objects.create(scope=Budget.Scope.TAG, tag="hotels-renamed", monthly_limit=Decimal("1"))
    Monitor.objects.filter(pk=monitor.pk).update(tag="hotels-renamed")
    spent = Task.objects.filter(tag=old_tag).aggregate(total=Sum("spend"))["total"]

    page = (
        member_client.get(reverse("monitors:detail", args=[monitor.slug]))
        .content.decode()
        .replace("&#x27;", "'")
    )

    assert (
        f"Sent under its run's tag “{old_tag}”, not the monitor's tag now, “hotels-renamed”: the budget of "
        f"tag “{old_tag}” pays for it ({exact_usd(Decimal('1') - spent)} left this month), not that of "
        "tag “hotels-renamed”."
    ) in page
    response = member_client.post(reverse("monitors:run_retry", args=[monitor.slug, run.pk]), follow=True)
    assert f"under its run's tag “{old_tag}” (not “hotels-renamed”)" in response.content.decode().replace(
        "&#x27;", "'"
    )
    resent = Task.objects.filter(batch=MonitorRun.objects.get(retry_of=run).batch)
    assert set(resent.values_list("tag", flat=True)) == {old_tag}


def test_after_the_tag_was_changed_the_retry_line_says_when_the_old_tag_has_no_budget(
    member_client, credential, catalog, member_user
):
    monitor = make_monitor(credential=credential, owner=member_user)
    failed_after_some_were_charged(monitor, member_user)
    old_tag = monitor.tag
    Budget.objects.create(scope=Budget.Scope.TAG, tag="hotels-renamed", monthly_limit=Decimal("1"))
    Monitor.objects.filter(pk=monitor.pk).update(tag="hotels-renamed")

    page = (
        member_client.get(reverse("monitors:detail", args=[monitor.slug]))
        .content.decode()
        .replace("&#x27;", "'")
    )

    assert (
        f"Sent under its run's tag “{old_tag}”, not the monitor's tag now, “hotels-renamed”: tag "
        f"“{old_tag}” has no budget, and the budget of tag “hotels-renamed” does not count it."
    ) in page


def test_a_retry_under_the_monitors_own_tag_says_nothing_of_tags(
    member_client, credential, catalog, member_user
):
    monitor = make_monitor(credential=credential, owner=member_user)
    run, _failed = failed_after_some_were_charged(monitor, member_user)
    page = (
        member_client.get(reverse("monitors:detail", args=[monitor.slug]))
        .content.decode()
        .replace("&#x27;", "'")
    )
    assert "Sends 2 tasks again" in page and "Sent under its run's tag" not in page
    response = member_client.post(reverse("monitors:run_retry", args=[monitor.slug, run.pk]), follow=True)
    assert "under its run's tag" not in response.content.decode().replace("&#x27;", "'")


def test_the_edit_page_says_a_new_tag_leaves_the_retries_of_earlier_runs_under_theirs(
    member_client, credential, catalog, member_user
):
    monitor = make_monitor(credential=credential, owner=member_user)
    page = member_client.get(reverse("monitors:edit", args=[monitor.slug])).content.decode()
    assert "a Retry of an earlier run resends under that run's tag, counted against its budget" in page


def test_after_the_tag_was_changed_the_runs_sent_under_the_old_tag_say_so_and_link_to_it(
    member_client, credential, catalog, member_user
):
    """Their tasks are listed under the old tag, not on the page of the monitor's tag now: the retry sent
    after the change as well as the run it retried."""
    monitor = make_monitor(credential=credential, owner=member_user)
    run, _failed = failed_after_some_were_charged(monitor, member_user)
    old_tag = monitor.tag
    Monitor.objects.filter(pk=monitor.pk).update(tag="hotels-renamed")
    member_client.post(reverse("monitors:run_retry", args=[monitor.slug, run.pk]))
    run_now(monitor=Monitor.objects.get(pk=monitor.pk), user=member_user)

    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()

    runs = page[page.index('id="runs-h"') : page.index('id="grid-h"')]
    link = f'under tag <a href="{reverse("history:tag_detail", kwargs={"tag": old_tag})}">{old_tag}</a>'
    assert runs.count(link) == 2  # the retry and its run; not the run sent since under the new tag
