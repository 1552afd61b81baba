"""The monitor page's runs over time: cost and tasks by status per run, server-rendered SVG."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from tasks.models import MonitorRun, Task
from tasks.monitors.charts import CHART_RUNS, run_points, status_chart
from tasks.monitors.runs import run_now
from tests.monitors.factories import make_monitor

pytestmark = pytest.mark.django_db


def test_the_monitor_page_charts_each_runs_cost_and_its_tasks_by_status(
    member_client, credential, catalog, member_user
):
    monitor = make_monitor(credential=credential, owner=member_user)
    sent = run_now(monitor=monitor, user=member_user)[0]
    # The page reads a run's counts and cost from its tasks (what they count now).
    first, *others = Task.objects.filter(batch=sent.batch)
    Task.objects.filter(pk=first.pk).update(spend=Decimal("0.0123"), status=Task.Status.FAILED)
    Task.objects.filter(pk__in=[task.pk for task in others[:4]]).update(spend=0, status=Task.Status.COMPLETED)
    Task.objects.filter(pk=others[4].pk).update(spend=0)
    MonitorRun.objects.create(
        monitor=monitor,
        slot=datetime(2026, 1, 2, 9, tzinfo=UTC),
        state=MonitorRun.State.SKIPPED,
        reason="Skipped: over the cap.",
    )
    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    svgs = re.findall(r"<svg .*?</svg>", page, flags=re.S)
    cost, status = [svg for svg in svgs if 'aria-label="Cost per run"' in svg or "by status" in svg]
    assert "$0.0123" in cost or "0.0123" in cost
    batch_url = reverse("prompt_templates:batch_detail", args=[sent.batch_id])
    assert f'href="{batch_url}"' in status
    assert status.count("run-segment-completed") == 1 and status.count("run-segment-failed") == 1
    assert "run-segment-pending" in status  # 1 of its 6 tasks not final yet
    assert "run-marker-skipped" in status and "no task sent" in status
    assert "style=" not in cost + status and "<script" not in cost + status
    # Oldest left: the skipped run of 2 January comes before the run made now.
    assert status.index("2026-01-02") < status.index(batch_url)


def test_a_monitor_without_runs_shows_no_chart(member_client, credential, catalog):
    monitor = make_monitor(credential=credential)
    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    assert "Tasks per run by status" not in page


def test_the_chart_keeps_the_newest_runs_and_scales_to_the_largest(credential, catalog):
    monitor = make_monitor(credential=credential)
    runs = [
        MonitorRun(
            monitor=monitor,
            slot=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=i),
            state=MonitorRun.State.DONE,
            task_count=i + 1,
            completed_count=i + 1,
        )
        for i in range(CHART_RUNS + 5)
    ]
    points = run_points(runs)
    assert len(points) == CHART_RUNS
    assert min(p.counts["completed"] for p in points) == 6  # the 5 oldest left out
    svg = str(status_chart(points))
    assert f"{CHART_RUNS + 5} tasks" in svg  # the axis is the largest run
    heights = [float(h) for h in re.findall(r'run-segment-completed"[^>]*height="([\d.]+)"', svg)]
    assert max(heights) == pytest.approx(160.0)
