"""Alerts: raised once, delivered by email and to JSON and Slack webhooks, retried with backoff, failures
shown to admins; budgets' 80 % and 100 % alerts; tasks stuck unknown."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import responses
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from tasks.models import Alert, AlertDelivery, AlertDestination, Budget, MonitorRun, Task
from tasks.monitors.alerts import DELIVERY_BACKOFF, alert_raise, deliveries_due
from tasks.monitors.runs import UNKNOWN_ALERT_AFTER, runs_refresh
from tasks.monitors.scheduler import budgets_alert_check, scheduler_tick
from tests.factories import make_task
from tests.monitors.factories import make_monitor

pytestmark = pytest.mark.django_db

HOOK = "https://hooks.example.com/services/T1/B2/secret"


def destination(monitor=None, budget=None, *, kind="webhook", url=HOOK, emails=""):
    d = AlertDestination(kind=kind, monitor=monitor, budget=budget, emails=emails)
    if kind != "email":
        d.set_url(url)
    d.save()
    return d


@pytest.fixture
def public_dns(monkeypatch):
    """hooks.example.com resolves to a public address (no DNS in tests)."""
    import socket

    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, **kw: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))],
    )


@responses.activate
def test_a_skipped_run_is_emailed_and_posted_as_json_and_to_slack(credential, catalog, public_dns):
    monitor = make_monitor(credential=credential, cap_per_run=Decimal("0"))
    destination(monitor, kind="email", emails="ops@example.com")
    destination(monitor, kind="webhook")
    destination(monitor, kind="slack", url="https://hooks.example.com/slack")
    responses.post(HOOK, status=200)
    responses.post("https://hooks.example.com/slack", status=200)
    scheduler_tick(now=monitor.next_run_at + timedelta(minutes=1))
    assert [m.to for m in mail.outbox] == [["ops@example.com"]]
    assert "cap" in mail.outbox[0].body
    bodies = {call.request.url: json.loads(call.request.body) for call in responses.calls}
    assert bodies[HOOK]["alert"] == "run_skipped" and bodies[HOOK]["monitor"] == "Hotels"
    assert "Run skipped" in bodies["https://hooks.example.com/slack"]["text"]
    assert set(AlertDelivery.objects.values_list("state", flat=True)) == {AlertDelivery.State.SENT}
    # The same run never alerts twice.
    scheduler_tick(now=monitor.next_run_at + timedelta(minutes=2))
    assert Alert.objects.count() == 1 and len(responses.calls) == 2


@responses.activate
def test_a_failing_webhook_is_retried_with_backoff_then_failed_and_shown_to_admins(
    credential, catalog, public_dns, team_admin_client
):
    monitor = make_monitor(credential=credential)
    destination(monitor)
    responses.post(HOOK, status=500)
    alert_raise(key="k", kind=Alert.Kind.RUN_FAILED, message="It broke", monitor=monitor)
    delivery = AlertDelivery.objects.get()
    for attempt in range(len(DELIVERY_BACKOFF) + 1):
        AlertDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        assert deliveries_due() == 1
        delivery.refresh_from_db()
        if attempt < len(DELIVERY_BACKOFF):
            assert delivery.state == AlertDelivery.State.PENDING
            wait = delivery.next_attempt_at - timezone.now()
            assert DELIVERY_BACKOFF[attempt] - timedelta(seconds=5) < wait <= DELIVERY_BACKOFF[attempt]
            assert deliveries_due() == 0  # not before its time
    assert delivery.state == AlertDelivery.State.FAILED
    assert delivery.attempts == 5 and "HTTP 500" in delivery.last_error
    page = team_admin_client.get(reverse("monitors:alert_list")).content.decode()
    assert "1 failed" in page and "HTTP 500" in page and "secret" not in page


def test_a_webhook_name_that_now_resolves_inward_is_not_called(credential, catalog, monkeypatch, settings):
    import socket

    settings.ALERT_WEBHOOKS_ALLOW_PRIVATE = False
    monitor = make_monitor(credential=credential)
    destination(monitor)
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, **kw: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))],
    )
    with responses.RequestsMock() as mocked:  # any call would fail the test
        alert_raise(key="k", kind=Alert.Kind.RUN_FAILED, message="x", monitor=monitor)
        deliveries_due()
        assert not mocked.calls
    assert "private address" in AlertDelivery.objects.get().last_error


def test_budget_alerts_at_80_and_100_percent_once_a_month(credential, catalog):
    budget = Budget.objects.create(scope=Budget.Scope.TAG, tag="seo", monthly_limit=Decimal("1"))
    destination(budget=budget, kind="email", emails="finance@example.com")
    make_task(credential=credential, tag="seo", spend=Decimal("0.85"))
    budgets_alert_check()
    budgets_alert_check()
    assert list(Alert.objects.values_list("kind", flat=True)) == [Alert.Kind.BUDGET_WARNING]
    make_task(credential=credential, tag="seo", spend=Decimal("0.20"))
    budgets_alert_check()
    assert set(Alert.objects.values_list("kind", flat=True)) == {
        Alert.Kind.BUDGET_WARNING,
        Alert.Kind.BUDGET_REACHED,
    }
    deliveries_due()
    assert len(mail.outbox) == 2 and "is used up" in mail.outbox[1].body


def test_a_budget_warning_is_titled_with_the_budgets_own_threshold(credential, catalog):
    """A budget warned at 50 %: its email said “Budget 80% used” above “… has used 51%”."""
    budget = Budget.objects.create(
        scope=Budget.Scope.TAG, tag="seo", monthly_limit=Decimal("1"), warn_ratio=Decimal("0.5")
    )
    destination(budget=budget, kind="email", emails="finance@example.com")
    make_task(credential=credential, tag="seo", spend=Decimal("0.51"))
    budgets_alert_check()
    deliveries_due()

    assert [m.subject for m in mail.outbox] == ["[LLM Responses] Budget 50% used"]
    assert "has used 51%" in mail.outbox[0].body
    assert str(Alert.objects.get()).startswith("Budget 50% used: ")


def test_a_budget_warning_reads_its_threshold_and_use_as_the_budgets_page_does(credential, catalog):
    """Warned at 82.5 %, 99.96 % used: the email said “Budget 83% used” (a threshold never set) and “has
    used 100%” (a budget not used up, no “used up” alert beside it). Both read now to the one decimal the
    budgets page shows, the use rounded down."""
    budget = Budget.objects.create(
        scope=Budget.Scope.TAG, tag="seo", monthly_limit=Decimal("1"), warn_ratio=Decimal("0.825")
    )
    destination(budget=budget, kind="email", emails="finance@example.com")
    make_task(credential=credential, tag="seo", spend=Decimal("0.9996"))
    budgets_alert_check()
    deliveries_due()

    assert [m.subject for m in mail.outbox] == ["[LLM Responses] Budget 82.5% used"]
    assert "has used 99.9%" in mail.outbox[0].body


def test_tasks_stuck_unknown_and_failed_tasks_raise_their_alerts(credential, catalog):
    monitor = make_monitor(credential=credential)
    scheduler_tick(now=monitor.next_run_at + timedelta(minutes=1))
    run = MonitorRun.objects.get()
    tasks = list(run.batch.tasks.all())
    Task.objects.filter(pk=tasks[0].pk).update(status=Task.Status.UNKNOWN)
    Task.objects.filter(pk__in=[t.pk for t in tasks[1:]]).update(status=Task.Status.COMPLETED)
    runs_refresh(now=datetime.now(UTC))
    assert not Alert.objects.filter(kind=Alert.Kind.TASKS_UNKNOWN).exists()  # not yet: it may still come back
    runs_refresh(now=datetime.now(UTC) + UNKNOWN_ALERT_AFTER)
    assert Alert.objects.get(kind=Alert.Kind.TASKS_UNKNOWN).run == run
    Task.objects.filter(pk=tasks[0].pk).update(status=Task.Status.FAILED)
    runs_refresh()
    run.refresh_from_db()
    assert run.state == MonitorRun.State.DONE and run.failed_count == 1 and run.completed_count == 5
    assert Alert.objects.get(kind=Alert.Kind.RUN_FAILED).run == run


def test_send_a_test_reports_success_and_failure(member_client, credential, catalog, public_dns):
    monitor = make_monitor(credential=credential)
    email = destination(monitor, kind="email", emails="me@example.com")
    response = member_client.post(reverse("monitors:destination_test", args=[email.pk]), follow=True)
    assert "Test alert sent" in response.content.decode() and len(mail.outbox) == 1
    hook = destination(monitor)
    with responses.RequestsMock() as mocked:
        mocked.post(HOOK, status=404)
        response = member_client.post(reverse("monitors:destination_test", args=[hook.pk]), follow=True)
    assert "failed: The webhook answered HTTP 404" in response.content.decode()


def test_webhook_urls_are_re_encrypted_with_the_credentials_when_keys_rotate(settings):
    from cryptography.fernet import Fernet
    from django.core.management import call_command

    hook = destination(kind="webhook")
    old = hook.url_encrypted
    settings.CREDENTIAL_KEYS = [Fernet.generate_key().decode(), *settings.CREDENTIAL_KEYS]
    call_command("rotate_credential_keys")
    hook.refresh_from_db()
    assert hook.url_encrypted != old
    settings.CREDENTIAL_KEYS = settings.CREDENTIAL_KEYS[:1]  # the old key dropped
    assert hook.get_url() == HOOK


@responses.activate
def test_removing_a_failing_destination_stops_its_retries_at_once(
    member_client, credential, catalog, public_dns
):
    """Its pending deliveries stayed “Pending” on the monitor page and were tried again for an hour
    (“The destination was removed.”) before counting as failed."""
    monitor = make_monitor(credential=credential)
    hook = destination(monitor)
    responses.post(HOOK, status=500)
    alert_raise(key="k", kind=Alert.Kind.RUN_FAILED, message="It broke", monitor=monitor)
    assert deliveries_due() == 1
    delivery = AlertDelivery.objects.get()
    assert delivery.state == AlertDelivery.State.PENDING

    member_client.post(reverse("monitors:destination_delete", args=[hook.pk]))

    delivery.refresh_from_db()
    assert delivery.state == AlertDelivery.State.FAILED and delivery.next_attempt_at is None
    assert delivery.last_error == "Not sent: the destination was removed."
    AlertDelivery.objects.update(next_attempt_at=timezone.now())
    assert deliveries_due() == 0
    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    assert "Failed</span> (Not sent: the destination was removed.)" in page


def test_a_failed_test_alert_is_reported_once_and_not_sent_again_later(
    member_client, credential, catalog, public_dns
):
    """“Send a test” that failed said “(retried with backoff)” and posted the stale test again over the
    next hour, after the person had fixed (or replaced) the webhook."""
    monitor = make_monitor(credential=credential)
    hook = destination(monitor)
    with responses.RequestsMock() as mocked:
        mocked.post(HOOK, status=404)
        response = member_client.post(reverse("monitors:destination_test", args=[hook.pk]), follow=True)

    page = response.content.decode()
    assert (
        "The test alert to Webhook (JSON): hooks.example.com failed: The webhook answered HTTP 404." in page
    )
    assert "retried" not in page
    delivery = AlertDelivery.objects.get()
    assert delivery.state == AlertDelivery.State.FAILED and delivery.next_attempt_at is None
    AlertDelivery.objects.update(next_attempt_at=timezone.now())
    assert deliveries_due() == 0


@pytest.mark.parametrize(
    ("unknown", "words"),
    [
        (
            1,
            "1 task of the run of 2026-01-01 09:00 (UTC) is unknown (its reply was lost; it may have been "
            "charged and is never resent).",
        ),
        (
            2,
            "2 tasks of the run of 2026-01-01 09:00 (UTC) are unknown (their reply was lost; they may have "
            "been charged and are never resent).",
        ),
    ],
)
def test_the_unknown_tasks_alert_says_task_is_or_tasks_are(credential, catalog, settings, unknown, words):
    settings.TIME_ZONE = "UTC"
    monitor = make_monitor(credential=credential)
    scheduler_tick(now=monitor.next_run_at + timedelta(minutes=1))
    run = MonitorRun.objects.get()
    tasks = list(run.batch.tasks.order_by("pk"))
    Task.objects.filter(pk__in=[t.pk for t in tasks[:unknown]]).update(status=Task.Status.UNKNOWN)
    runs_refresh(now=datetime.now(UTC) + UNKNOWN_ALERT_AFTER)
    assert Alert.objects.get(kind=Alert.Kind.TASKS_UNKNOWN).message == f"Hotels: {words}"


def test_the_failed_tasks_alert_of_a_one_task_run_says_task(credential, catalog, settings):
    settings.TIME_ZONE = "UTC"
    monitor = make_monitor(
        credential=credential,
        rows_text="city\nParis\n",
        targets=[{"model_name": "gpt-4.1", "credential_id": credential.pk}],
    )
    scheduler_tick(now=monitor.next_run_at + timedelta(minutes=1))
    run = MonitorRun.objects.get()
    run.batch.tasks.update(status=Task.Status.FAILED)
    runs_refresh()
    assert Alert.objects.get(kind=Alert.Kind.RUN_FAILED).message == (
        "Hotels: 1 of 1 task of the run of 2026-01-01 09:00 (UTC) failed."
    )
