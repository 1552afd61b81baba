"""The scheduler: one run per slot, catch-up after a downtime, DST, caps and budgets."""

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest

from tasks.models import Alert, AuditEntry, Budget, Monitor, MonitorRun, Task
from tasks.monitors.runs import run_now
from tasks.monitors.scheduler import scheduler_tick
from tests.monitors.factories import make_monitor

pytestmark = pytest.mark.django_db

START = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_daily_monitor_runs_once_a_day_as_a_batch_of_its_prompts_on_each_model(credential, catalog):
    monitor = make_monitor(credential=credential)
    assert monitor.next_run_at == datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    for hour in range(0, 24 * 3, 1):
        scheduler_tick(now=START + timedelta(hours=hour, minutes=1))
    runs = list(monitor.runs.order_by("slot"))
    assert [run.slot.day for run in runs] == [1, 2, 3]
    assert {run.kind for run in runs} == {MonitorRun.Kind.SCHEDULED}
    assert all(run.state == MonitorRun.State.SENT for run in runs)
    tasks = Task.objects.filter(batch=runs[0].batch)
    assert tasks.count() == 6  # 3 rows × 2 models
    assert {task.tag for task in tasks} == {"hotels"}
    assert {task.model_name for task in tasks} == {"gpt-4.1", "claude-3-5-haiku"}
    assert {task.provider for task in tasks} == {"chat_gpt", "claude"}
    assert all(task.status == Task.Status.QUEUED for task in tasks)  # planned: workers send them


def test_after_a_downtime_one_catch_up_run_stands_for_the_missed_slots(credential, catalog):
    monitor = make_monitor(credential=credential)
    scheduler_tick(now=START + timedelta(days=4, hours=12))
    runs = list(monitor.runs.all())
    assert len(runs) == 1
    assert runs[0].kind == MonitorRun.Kind.CATCH_UP
    assert runs[0].missed_slots == 5
    assert runs[0].slot == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    monitor.refresh_from_db()
    assert monitor.next_run_at == datetime(2026, 1, 6, 9, 0, tzinfo=UTC)


def test_daily_at_a_local_time_follows_daylight_saving_in_its_time_zone(credential, catalog):
    monitor = make_monitor(
        credential=credential,
        time_zone="Europe/Berlin",
        time_of_day=time(9, 0),
        now=datetime(2026, 3, 27, tzinfo=UTC),
    )
    now = datetime(2026, 3, 27, tzinfo=UTC)
    while now < datetime(2026, 4, 1, tzinfo=UTC):
        scheduler_tick(now=now)
        now += timedelta(minutes=30)
    slots = [run.slot for run in monitor.runs.order_by("slot")]
    # 09:00 in Berlin: 08:00 UTC before the clocks go forward on 29 March, 07:00 UTC after.
    assert [slot.astimezone(UTC).hour for slot in slots] == [8, 8, 7, 7, 7]
    assert len(set(slots)) == 5


def test_a_run_over_the_cap_is_skipped_with_its_reason_in_the_audit_log_and_an_alert(credential, catalog):
    monitor = make_monitor(credential=credential, cap_per_run=Decimal("0.001"))
    scheduler_tick(now=START + timedelta(hours=9, minutes=1))
    run = monitor.runs.get()
    assert run.state == MonitorRun.State.SKIPPED
    assert "over the monitor's cap of $0.0010 per run" in run.reason  # not "$0.00": the cap is not zero
    assert not Task.objects.exists()
    assert AuditEntry.objects.filter(action="monitor.run_skipped", object_id=str(monitor.pk)).exists()
    assert Alert.objects.get(run=run).kind == Alert.Kind.RUN_SKIPPED


def test_the_monthly_cap_counts_run_now_and_skips_the_run_that_would_cross_it(credential, catalog, user):
    monitor = make_monitor(credential=credential, owner=user)
    one_run = run_now(monitor=monitor, user=user)[0].estimated_charge
    Monitor.objects.filter(pk=monitor.pk).update(cap_per_month=one_run * Decimal("1.5"))
    monitor.refresh_from_db()
    second = run_now(monitor=monitor, user=user)[0]
    assert second.state == MonitorRun.State.SKIPPED
    assert "this month" in second.reason
    assert f"of its ${monitor.cap_per_month.quantize(Decimal('0.0001'))} this month" in second.reason
    assert Task.objects.count() == 6


def test_a_budget_that_would_be_exceeded_skips_the_run(credential, catalog, user):
    Budget.objects.create(scope=Budget.Scope.TAG, tag="hotels", monthly_limit=Decimal("0.0001"))
    monitor = make_monitor(credential=credential, owner=user)
    scheduler_tick(now=START + timedelta(hours=9, minutes=1))
    run = monitor.runs.get()
    assert run.state == MonitorRun.State.SKIPPED
    assert "Budget for tag hotels would be exceeded" in run.reason
    assert not Task.objects.exists()


def test_a_paused_monitor_does_not_run(credential, catalog):
    monitor = make_monitor(credential=credential)
    Monitor.objects.filter(pk=monitor.pk).update(state=Monitor.State.PAUSED)
    scheduler_tick(now=START + timedelta(days=2))
    assert not MonitorRun.objects.exists()


def test_a_run_left_planned_by_a_stopped_scheduler_is_executed_by_the_next_tick(credential, catalog):
    monitor = make_monitor(credential=credential)
    run = MonitorRun.objects.create(monitor=monitor, slot=START + timedelta(hours=9))
    Monitor.objects.filter(pk=monitor.pk).update(next_run_at=START + timedelta(days=1, hours=9))
    scheduler_tick(now=START + timedelta(hours=10))
    run.refresh_from_db()
    assert run.state == MonitorRun.State.SENT
    assert Task.objects.filter(batch=run.batch).count() == 6
    scheduler_tick(now=START + timedelta(hours=11))
    assert Task.objects.count() == 6
