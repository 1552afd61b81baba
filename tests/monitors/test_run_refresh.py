"""A sent run is brought up to date by the scheduler's tick until its tasks are final, however long it takes:
a lost reply (`unknown`) may be reconciled weeks later, or settled after 31 days (docs/spend.md)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tasks.models import MonitorRun, Task
from tasks.monitors.runs import LATE_REFRESH_EVERY, REFRESH_WINDOW, run_now, runs_refresh
from tasks.spend.provisional import SETTLE_AFTER, provisional_settle
from tests.monitors.factories import make_monitor

pytestmark = pytest.mark.django_db


def sent_run_with_one_unknown(credential, member_user) -> tuple[MonitorRun, Task]:
    """A run of 6 tasks: 5 completed, 1 whose reply was lost; a first tick has counted it."""
    monitor = make_monitor(credential=credential, owner=member_user)
    run = run_now(monitor=monitor, user=member_user)[0]
    tasks = list(Task.objects.filter(batch=run.batch).order_by("pk"))
    Task.objects.filter(pk__in=[t.pk for t in tasks[1:]]).update(
        status=Task.Status.COMPLETED, spend=Decimal("0.0031"), spend_is_final=True
    )
    Task.objects.filter(pk=tasks[0].pk).update(status=Task.Status.UNKNOWN, spend_is_final=False)
    runs_refresh()
    run.refresh_from_db()
    assert (run.state, run.completed_count, run.unknown_count) == (MonitorRun.State.SENT, 5, 1)
    return run, tasks[0]


def test_a_run_older_than_a_week_is_done_once_its_lost_reply_is_reconciled(credential, catalog, member_user):
    """Past REFRESH_WINDOW the run stayed 'Sent' forever, '1 unknown', after its task had completed."""
    run, lost = sent_run_with_one_unknown(credential, member_user)
    later = datetime.now(UTC) + REFRESH_WINDOW + timedelta(days=2)
    Task.objects.filter(pk=lost.pk).update(
        status=Task.Status.COMPLETED, spend=Decimal("0.0029"), spend_is_final=True
    )

    runs_refresh(now=later)

    run.refresh_from_db()
    assert run.state == MonitorRun.State.DONE and run.finished_at == later
    assert (run.completed_count, run.failed_count, run.unknown_count) == (6, 0, 0)
    assert run.cost == Decimal("0.0184")


def test_a_run_whose_lost_reply_is_settled_after_31_days_is_done_with_it_failed(
    credential, catalog, member_user
):
    run, lost = sent_run_with_one_unknown(credential, member_user)
    estimate = Task.objects.get(pk=lost.pk).spend
    settled_at = datetime.now(UTC) + SETTLE_AFTER + timedelta(minutes=10)
    assert provisional_settle(now=settled_at) == 1

    runs_refresh(now=settled_at + timedelta(minutes=1))

    run.refresh_from_db()
    assert run.state == MonitorRun.State.DONE
    assert (run.completed_count, run.failed_count, run.unknown_count) == (5, 1, 0)
    assert run.cost == Decimal("0.0155") + estimate


def test_a_run_past_the_window_is_read_again_every_few_minutes_not_every_tick(
    credential, catalog, member_user
):
    run, lost = sent_run_with_one_unknown(credential, member_user)
    first = datetime.now(UTC) + REFRESH_WINDOW + timedelta(hours=1)
    runs_refresh(now=first)  # read once past the window: nothing changed
    Task.objects.filter(pk=lost.pk).update(status=Task.Status.COMPLETED, spend_is_final=True)

    runs_refresh(now=first + timedelta(minutes=1))
    run.refresh_from_db()
    assert run.state == MonitorRun.State.SENT

    runs_refresh(now=first + LATE_REFRESH_EVERY + timedelta(seconds=1))
    run.refresh_from_db()
    assert run.state == MonitorRun.State.DONE and run.completed_count == 6


def test_old_runs_are_read_in_turns_a_bounded_number_a_tick(credential, catalog, member_user, monkeypatch):
    monkeypatch.setattr("tasks.monitors.runs.LATE_REFRESH_LIMIT", 1)
    first, _ = sent_run_with_one_unknown(credential, member_user)
    second = run_now(monitor=first.monitor, user=member_user)[0]
    Task.objects.filter(batch__in=[first.batch, second.batch]).update(status=Task.Status.COMPLETED)
    later = datetime.now(UTC) + REFRESH_WINDOW + timedelta(days=1)

    assert runs_refresh(now=later) == 1
    assert runs_refresh(now=later + timedelta(seconds=30)) == 1  # the other one, not the first again
    assert set(MonitorRun.objects.values_list("state", flat=True)) == {MonitorRun.State.DONE}


def test_a_sent_run_whose_batch_has_no_task_is_done_with_nothing_counted(credential, catalog, member_user):
    """Nothing in it can change: left 'Sent', it would be read again forever."""
    monitor = make_monitor(credential=credential, owner=member_user)
    run = run_now(monitor=monitor, user=member_user)[0]
    Task.objects.filter(batch=run.batch).update(batch=None)

    assert runs_refresh() == 1

    run.refresh_from_db()
    assert run.state == MonitorRun.State.DONE
    assert (run.completed_count, run.failed_count, run.unknown_count, run.cost) == (0, 0, 0, 0)


def test_recent_runs_past_a_ticks_share_are_read_in_turns_too(credential, catalog, member_user, monkeypatch):
    """A tick read the oldest 500 sent runs of the week: with that many waiting on lost replies, a newer run
    stayed 'Sent' until they left the week."""
    monkeypatch.setattr("tasks.monitors.runs.RECENT_REFRESH_LIMIT", 1)
    waiting, _ = sent_run_with_one_unknown(credential, member_user)
    newer = run_now(monitor=waiting.monitor, user=member_user)[0]
    Task.objects.filter(batch=newer.batch).update(status=Task.Status.COMPLETED)
    MonitorRun.objects.filter(pk=newer.pk).update(created_at=waiting.created_at + timedelta(seconds=1))
    newest = run_now(monitor=waiting.monitor, user=member_user)[0]  # a tick's share: read every tick
    tick = datetime.now(UTC) + LATE_REFRESH_EVERY + timedelta(seconds=1)

    runs_refresh(now=tick)

    newer.refresh_from_db()
    assert newer.state == MonitorRun.State.DONE and newer.completed_count == 6
    assert MonitorRun.objects.get(pk=waiting.pk).state == MonitorRun.State.SENT
    assert MonitorRun.objects.get(pk=newest.pk).state == MonitorRun.State.SENT  # its tasks are queued
