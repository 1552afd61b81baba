"""The data migration that gives the "every N days" monitors saved without a start date the one that keeps
their schedule: after a deploy, no run moves, none is added, none is skipped."""

from datetime import time, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

from tasks.models import Monitor
from tasks.monitors.cadence import EPOCH, Cadence

pytestmark = pytest.mark.django_db(transaction=True)


def _before_this_migration():
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    (node,) = [k for k in graph.nodes if k[0] == "tasks" and k[1].endswith("_monitor_every_n_days_start")]
    (parent,) = [p.key for p in graph.node_map[node].parents if p.key[0] == "tasks"]
    return [parent]


@pytest.fixture
def old_apps():
    before = _before_this_migration()
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    yield executor.loader.project_state(before).apps
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def _old_monitor(apps, name, **fields):
    return apps.get_model("tasks", "Monitor").objects.create(
        name=name, slug=name.lower(), tag=name.lower(), targets=[], time_of_day=time(9, 0), **fields
    )


def test_every_n_days_monitors_keep_their_slots_and_the_others_are_left_alone(old_apps):
    made = {
        "Three": _old_monitor(
            old_apps, "Three", cadence="every_n_days", interval_days=3, time_zone="Asia/Tokyo"
        ),
        "Seven": _old_monitor(
            old_apps, "Seven", cadence="every_n_days", interval_days=7, time_zone="America/Los_Angeles"
        ),
        "Daily": _old_monitor(old_apps, "Daily", cadence="daily"),
    }
    now = timezone.now()
    old = {}
    for name in ("Three", "Seven"):
        epoch_counted = Cadence.of(Monitor(**{**_fields(made[name]), "start_date": None}))
        assert epoch_counted.start_date is None  # counted from EPOCH, as before
        old[name] = epoch_counted.slots_between(now - timedelta(hours=1), now + timedelta(days=60))

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    for name in ("Three", "Seven"):
        monitor = Monitor.objects.get(pk=made[name].pk)
        assert monitor.start_date is not None and monitor.start_date <= now.date() + timedelta(days=1)
        assert (monitor.start_date - EPOCH).days % monitor.interval_days == 0
        new = Cadence.of(monitor).slots_between(now - timedelta(hours=1), now + timedelta(days=60))
        assert new == old[name] and new
    assert Monitor.objects.get(pk=made["Daily"].pk).start_date is None


def _fields(old) -> dict:
    return {
        name: getattr(old, name)
        for name in ("cadence", "interval_days", "time_of_day", "time_zone", "minute", "weekdays", "cron")
    } | {"end_date": None, "start_date": None, "name": old.name}


def test_an_overdue_monitor_still_catches_up_the_slots_it_missed(old_apps):
    """No scheduler ticked for 3 days before the deploy: the start date is before the slot still due, so the
    next tick makes its catch-up run of the 3 slots missed, as it would have before."""
    from datetime import UTC, datetime

    from tasks.monitors.scheduler import slot_claim

    now = timezone.now()
    due = datetime.combine(now.date() - timedelta(days=3), time(9, 0), tzinfo=UTC)
    old = _old_monitor(
        old_apps, "Daily", cadence="every_n_days", interval_days=1, time_zone="UTC", next_run_at=due
    )

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    monitor = Monitor.objects.get(pk=old.pk)
    assert monitor.start_date <= due.date()
    run = slot_claim(monitor_id=monitor.pk, due_at=due, now=now)
    assert run is not None and run.missed_slots >= 3
