"""What the monitor page says a run cost, and how much of it is still provisional (docs/spend.md): read
from the run's tasks when the page is shown, not from counts a scheduler's tick last wrote."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tasks.models import Task
from tasks.monitors.runs import run_now
from tasks.templatetags.spend_format import money
from tests.monitors.factories import make_monitor

pytestmark = pytest.mark.django_db


def runs_section(client, monitor) -> str:
    page = client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    return page[page.index('id="runs-h"') :]


def test_a_run_just_sent_shows_what_its_tasks_count_now_all_of_it_provisional(
    member_client, credential, catalog, member_user
):
    """Right after Run now no tick has refreshed the run: its cost read $0.0000 while its 6 tasks already
    counted their estimates against the budgets."""
    monitor = make_monitor(credential=credential, owner=member_user)
    run = run_now(monitor=monitor, user=member_user)[0]
    counted = sum(task.spend for task in Task.objects.filter(batch=run.batch))
    assert counted > 0

    runs = runs_section(member_client, monitor)

    assert f'{money(counted)}<div class="small muted">of which {money(counted)} provisional</div>' in runs


def four_final_two_provisional(run) -> None:
    """Of the run's 6 tasks, 4 completed at $0.0031 (final) and 2 accepted, charged $0.0102 at post:
    $0.0328 in all, of which $0.0204 provisional."""
    tasks = list(Task.objects.filter(batch=run.batch).order_by("created_at"))
    Task.objects.filter(pk__in=[t.pk for t in tasks[:4]]).update(
        status=Task.Status.COMPLETED, spend=Decimal("0.0031"), spend_is_final=True
    )
    Task.objects.filter(pk__in=[t.pk for t in tasks[4:]]).update(
        status=Task.Status.SUBMITTED, spend=Decimal("0.0102"), spend_is_final=False
    )


def test_a_runs_cost_says_the_part_not_final_yet_and_the_summary_too(
    member_client, credential, catalog, member_user
):
    monitor = make_monitor(credential=credential, owner=member_user)
    run = run_now(monitor=monitor, user=member_user)[0]
    four_final_two_provisional(run)
    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    total, provisional = Decimal("0.0328"), Decimal("0.0204")

    runs = page[page.index('id="runs-h"') :]
    assert f'{money(total)}<div class="small muted">of which {money(provisional)} provisional</div>' in runs
    summary = page[page.index('id="summary-h"') : page.index('id="runs-h"')]
    assert f"<strong>{money(total)}</strong> (of which {money(provisional)} provisional" in summary


def test_a_run_whose_tasks_are_all_final_says_nothing_is_provisional(
    member_client, credential, catalog, member_user
):
    monitor = make_monitor(credential=credential, owner=member_user)
    run = run_now(monitor=monitor, user=member_user)[0]
    Task.objects.filter(batch=run.batch).update(
        status=Task.Status.COMPLETED, spend=Decimal("0.0031"), spend_is_final=True
    )
    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    assert money(Decimal("0.0186")) in page[page.index('id="runs-h"') :]
    assert "provisional" not in page


def test_a_skipped_run_says_its_tasks_were_planned_not_sent(member_client, credential, catalog, member_user):
    """A run skipped at its cap showed "6" under Tasks beside 0 completed, failed and unknown: as if 6
    tasks had gone out and vanished."""
    monitor = make_monitor(credential=credential, owner=member_user, cap_per_run=Decimal("0.0001"))
    run = run_now(monitor=monitor, user=member_user)[0]
    assert run.state == run.State.SKIPPED and run.task_count == 6

    runs = runs_section(member_client, monitor)

    assert '<td class="num">—<div class="small muted">6 planned, none sent</div></td>' in runs
    assert '<td class="num">6</td>' not in runs


def monitors_list(client) -> str:
    page = client.get(reverse("monitors:list")).content.decode()
    return page[page.index('id="monitors"') :]


def test_the_list_says_the_part_of_the_months_cost_not_final_yet_as_the_monitor_page_does(
    member_client, credential, catalog, member_user
):
    """The list read $0.0328 for a monitor whose page says '(of which $0.0204 provisional …)'."""
    monitor = make_monitor(credential=credential, owner=member_user)
    run = run_now(monitor=monitor, user=member_user)[0]
    four_final_two_provisional(run)
    final = make_monitor(credential=credential, owner=member_user, name="Final")
    Task.objects.filter(batch=run_now(monitor=final, user=member_user)[0].batch).update(
        status=Task.Status.COMPLETED, spend=Decimal("0.0031"), spend_is_final=True
    )

    listed = monitors_list(member_client)

    final_row, hotels_row = (
        listed[listed.index(">Final<") : listed.index(">Hotels<")],
        listed[listed.index(">Hotels<") :],
    )
    assert (
        f'<td class="num">{money(Decimal("0.0328"))}'
        f'<div class="small muted">of which {money(Decimal("0.0204"))} provisional</div></td>'
    ) in hotels_row
    assert f'<td class="num">{money(Decimal("0.0186"))}</td>' in final_row  # all final: nothing said


def test_the_list_reads_every_monitors_cost_in_the_same_queries_however_many(
    member_client, credential, catalog, member_user
):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert member_client.get(reverse("monitors:list")).status_code == 200
        return len(captured)

    run_now(monitor=make_monitor(credential=credential, owner=member_user), user=member_user)
    one = queries()
    for name in ["Coffee", "Flights", "Trains"]:
        run_now(monitor=make_monitor(credential=credential, owner=member_user, name=name), user=member_user)

    assert queries() == one


def test_a_runs_counts_are_its_tasks_now_each_linking_to_the_tasks_it_counts(
    member_client, credential, catalog, member_user
):
    """Between ticks the runs table said 0 completed, 0 failed, 0 unknown while the run's batch listed 3, 2
    and 1: its counts were what a tick last wrote."""
    monitor = make_monitor(credential=credential, owner=member_user)
    run = run_now(monitor=monitor, user=member_user)[0]
    tasks = list(Task.objects.filter(batch=run.batch).order_by("created_at"))
    Task.objects.filter(pk__in=[t.pk for t in tasks[:3]]).update(status=Task.Status.COMPLETED)
    Task.objects.filter(pk__in=[t.pk for t in tasks[3:5]]).update(status=Task.Status.FAILED)
    Task.objects.filter(pk=tasks[5].pk).update(status=Task.Status.UNKNOWN)

    runs = runs_section(member_client, monitor)

    for status, count in [("completed", 3), ("failed", 2), ("unknown", 1)]:
        url = f"{reverse('history:task_list')}?batch={run.batch_id}&amp;status={status}"
        assert f'<td class="num"><a href="{url}">{count}</a></td>' in runs
        listed = member_client.get(url.replace("&amp;", "&")).context["page"]
        assert listed.count == count
