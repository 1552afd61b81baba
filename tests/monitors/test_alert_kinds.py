"""Each alert destination chooses the kinds of alert it receives (default: every kind), per monitor and per
budget; "send a test" always goes."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse

from tasks.models import Alert, AlertDelivery, AlertDestination, AuditEntry, Budget
from tasks.monitors.alerts import alert_raise, deliveries_due
from tasks.monitors.scheduler import budgets_alert_check, scheduler_tick
from tests.factories import make_task
from tests.monitors.factories import make_monitor

pytestmark = pytest.mark.django_db


def test_a_destination_added_with_only_failures_gets_no_skipped_run_alert(member_client, credential, catalog):
    monitor = make_monitor(credential=credential, cap_per_run=Decimal("0"))
    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    assert 'value="run_skipped"' in page and "checked" in page.split('value="run_skipped"')[1][:40]
    url = reverse("monitors:destination_add", args=[monitor.slug])
    member_client.post(
        url, {"kind": "email", "emails": "failures@example.com", "alert_kinds": ["run_failed"]}
    )
    member_client.post(url, {"kind": "email", "emails": "all@example.com"})  # nothing ticked: every kind
    failures, everything = AlertDestination.objects.order_by("pk")
    assert failures.alert_kinds == ["run_failed"] and everything.alert_kinds == []

    scheduler_tick(now=monitor.next_run_at + timedelta(minutes=1))  # skipped: over its cap
    assert [m.to for m in mail.outbox] == [["all@example.com"]]
    alert_raise(key="x", kind=Alert.Kind.RUN_FAILED, message="It broke", monitor=monitor)
    deliveries_due()
    assert sorted(m.to[0] for m in mail.outbox) == [
        "all@example.com",
        "all@example.com",
        "failures@example.com",
    ]
    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    assert "Receives Run failed" in page and "Receives every alert" in page


def test_changing_a_destinations_kinds_is_audited_and_a_test_still_goes(member_client, credential, catalog):
    monitor = make_monitor(credential=credential)
    destination = AlertDestination.objects.create(kind="email", emails="ops@example.com", monitor=monitor)
    url = reverse("monitors:destination_kinds", args=[destination.pk])
    member_client.post(url, {f"d{destination.pk}-alert_kinds": ["tasks_unknown"]})
    destination.refresh_from_db()
    assert destination.alert_kinds == ["tasks_unknown"]
    assert AuditEntry.objects.filter(action="alert_destination.kinds").count() == 1
    # A kind that is not a monitor's (or made up) is refused, the choice kept.
    response = member_client.post(url, {f"d{destination.pk}-alert_kinds": ["budget_reached"]}, follow=True)
    assert "Choose among the alert kinds listed." in response.content.decode()
    destination.refresh_from_db()
    assert destination.alert_kinds == ["tasks_unknown"]
    member_client.post(reverse("monitors:destination_test", args=[destination.pk]))
    assert len(mail.outbox) == 1  # the test goes whatever the kinds
    # Every kind ticked is "every kind".
    member_client.post(
        url, {f"d{destination.pk}-alert_kinds": ["run_failed", "run_skipped", "tasks_unknown"]}
    )
    destination.refresh_from_db()
    assert destination.alert_kinds == []


def test_a_budget_destination_for_100_percent_only(team_admin_client, credential):
    budget = Budget.objects.create(scope=Budget.Scope.TAG, tag="seo", monthly_limit=Decimal("1"))
    response = team_admin_client.post(
        reverse("monitors:alert_list"),
        {
            "budget": str(budget.pk),
            "kind": "email",
            "emails": "cfo@example.com",
            "alert_kinds": ["budget_reached"],
        },
    )
    assert response.status_code == 302
    make_task(credential=credential, tag="seo", spend=Decimal("0.85"))
    budgets_alert_check()
    deliveries_due()
    assert mail.outbox == [] and not AlertDelivery.objects.exists()  # the 80 % alert is not for it
    make_task(credential=credential, tag="seo", spend=Decimal("0.20"))
    budgets_alert_check()
    deliveries_due()
    assert [m.to for m in mail.outbox] == [["cfo@example.com"]] and "is used up" in mail.outbox[0].body
    page = team_admin_client.get(reverse("monitors:alert_list")).content.decode()
    assert "Receives Budget reached" in page


def test_the_alerts_page_does_not_say_every_budget_warns_at_80_percent(team_admin_client):
    """A budget set to warn at 50 %: the page and the kinds offered name its threshold, not a fixed 80 %."""
    Budget.objects.create(
        scope=Budget.Scope.TAG, tag="seo", monthly_limit=Decimal("1"), warn_ratio=Decimal("0.5")
    )
    page = team_admin_client.get(reverse("monitors:alert_list")).content.decode()
    assert "80 % and 100 %" not in page and "80% used" not in page
    assert "at its warning threshold" in page and "Budget warning (its threshold" in page
