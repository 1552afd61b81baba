"""Run now pressed twice without JavaScript (a double click, the browser's resend): the same page's key, the
second press arriving while the first is reserving the budgets, which have room for one run. The second
press names the run the first made; it is never told the budget refused it, and one run is planned."""

import pytest
from django.test import Client
from django.urls import reverse

from tasks.models import Budget, MonitorRun, Task
from tasks.monitors import runs
from tasks.monitors.plans import run_plan
from tests.concurrency import AnotherTransactionFirst
from tests.monitors.factories import make_monitor

pytestmark = pytest.mark.django_db(transaction=True)


def test_run_now_pressed_again_while_the_first_press_reserves_names_its_run_not_a_budget_error(
    credential, catalog, member_user, monkeypatch
):
    monitor = make_monitor(credential=credential, owner=member_user)
    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=run_plan(monitor=monitor).charge)  # one run
    url = reverse("monitors:run_now", args=[monitor.slug])
    first_tab, second_tab = Client(), Client()
    first_tab.force_login(member_user)
    second_tab.force_login(member_user)
    key = first_tab.get(reverse("monitors:detail", args=[monitor.slug])).context["run_now_key"]
    second = AnotherTransactionFirst(
        runs.budgets_reserve, lambda: second_tab.post(url, {"request_key": key}, follow=True)
    )
    monkeypatch.setattr(runs, "budgets_reserve", second)

    first = first_tab.post(url, {"request_key": key}, follow=True).content.decode()
    again = second.join()

    assert "Run started: 6 tasks planned" in first
    assert not isinstance(again, Exception), again
    assert "This Run now was pressed already" in again.content.decode()
    assert "exceeded" not in again.content.decode()
    run = MonitorRun.objects.get()
    assert run.state == MonitorRun.State.SENT and Task.objects.count() == 6
