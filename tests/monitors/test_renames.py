"""A renamed monitor keeps its old addresses, as a renamed GitHub repository does: a bookmark, a link in an
alert sent before the rename, a page left open. A GET on an old slug is sent to the same page under the
current slug (301); a POST acts on the monitor the old slug names now, as on its current slug."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from tasks.models import Alert, AlertDestination, AuditEntry, Monitor, MonitorRun, Task
from tasks.monitors.alerts import alert_raise, deliveries_due
from tests.factories import PASSWORD
from tests.monitors.factories import make_monitor
from tests.monitors.test_views import form_data

pytestmark = pytest.mark.django_db


def rename(client, monitor, name: str) -> Monitor:
    response = client.post(
        reverse("monitors:edit", args=[monitor.slug]), form_data(monitor.template_version, name=name)
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    monitor.refresh_from_db()
    return monitor


def test_the_old_address_of_a_renamed_monitor_redirects_permanently_to_its_new_one(
    member_client, credential, catalog, member_user
):
    monitor = make_monitor(credential=credential, owner=member_user, name="Hotels")
    old = reverse("monitors:detail", args=["hotels"])
    rename(member_client, monitor, "Hotels Europe")
    assert monitor.slug == "hotels-europe"

    response = member_client.get(old + "?prompt=Best%20hotel")

    assert response.status_code == 301
    assert response["Location"] == reverse("monitors:detail", args=["hotels-europe"]) + "?prompt=Best%20hotel"
    page = member_client.get(response["Location"]).content.decode()
    assert "Hotels Europe" in page
    for name in ["edit", "visibility"]:  # every page of the monitor, not only its main one
        response = member_client.get(reverse(f"monitors:{name}", args=["hotels"]))
        assert response.status_code == 301
        assert response["Location"] == reverse(f"monitors:{name}", args=["hotels-europe"])


def test_renamed_twice_every_old_address_leads_to_the_current_one_in_one_hop(
    member_client, credential, catalog, member_user
):
    monitor = make_monitor(credential=credential, owner=member_user, name="Hotels")
    rename(member_client, monitor, "Hotels Europe")
    rename(member_client, monitor, "Hotels EU")

    for old in ["hotels", "hotels-europe"]:
        response = member_client.get(reverse("monitors:detail", args=[old]))
        assert response.status_code == 301
        assert response["Location"] == reverse("monitors:detail", args=["hotels-eu"])

    rename(member_client, monitor, "Hotels")  # back to its first name: its address again, not a redirect
    assert member_client.get(reverse("monitors:detail", args=["hotels"])).status_code == 200
    response = member_client.get(reverse("monitors:detail", args=["hotels-eu"]))
    assert response.status_code == 301 and response["Location"] == reverse("monitors:detail", args=["hotels"])


def test_run_now_pressed_on_a_page_opened_before_a_rename_runs_the_monitor_once(
    member_client, credential, catalog, member_user
):
    monitor = make_monitor(credential=credential, owner=member_user, name="Hotels")
    page = member_client.get(reverse("monitors:detail", args=["hotels"]))
    key = page.context["run_now_key"]
    rename(member_client, monitor, "Hotels Europe")  # someone else, in another tab

    old_run_now = reverse("monitors:run_now", args=["hotels"])
    response = member_client.post(old_run_now, {"request_key": key})

    assert response.status_code == 302  # answered as on its current address, never a redirect of the POST
    assert response["Location"] == reverse("monitors:detail", args=["hotels-europe"])
    run = MonitorRun.objects.get()
    assert run.monitor == monitor and run.state == MonitorRun.State.SENT
    assert Task.objects.filter(batch=run.batch).count() == 6
    page = member_client.get(response["Location"]).content.decode()
    assert "Run started: 6 tasks planned" in page
    assert "renamed" in page and "Hotels Europe" in page  # the person is told why the address changed
    again = member_client.post(old_run_now, {"request_key": key}, follow=True).content.decode()
    assert "This Run now was pressed already" in again
    assert MonitorRun.objects.count() == 1 and Task.objects.count() == 6


def test_an_htmx_post_on_an_old_address_is_answered_as_on_the_current_one(
    member_client, credential, catalog, member_user
):
    monitor = make_monitor(credential=credential, owner=member_user, name="Hotels")
    rename(member_client, monitor, "Hotels Europe")

    response = member_client.post(
        reverse("monitors:state", args=["hotels"]), {"action": "pause"}, headers={"HX-Request": "true"}
    )
    current = member_client.post(
        reverse("monitors:state", args=["hotels-europe"]),
        {"action": "resume"},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == current.status_code == 302
    assert response["Location"] == current["Location"] == reverse("monitors:detail", args=["hotels-europe"])
    assert AuditEntry.objects.filter(action="monitor.pause", object_id=str(monitor.pk)).exists()


def test_pause_and_retry_on_an_old_address_act_on_the_renamed_monitor(
    member_client, credential, catalog, member_user
):
    monitor = make_monitor(credential=credential, owner=member_user, name="Hotels")
    credential.is_active = False
    credential.save(update_fields=["is_active"])
    member_client.post(reverse("monitors:run_now", args=["hotels"]))
    failed = MonitorRun.objects.get()
    assert failed.state == MonitorRun.State.FAILED
    credential.is_active = True
    credential.save(update_fields=["is_active"])
    rename(member_client, monitor, "Hotels Europe")

    response = member_client.post(reverse("monitors:state", args=["hotels"]), {"action": "pause"})
    assert response["Location"] == reverse("monitors:detail", args=["hotels-europe"])
    monitor.refresh_from_db()
    assert monitor.state == Monitor.State.PAUSED
    response = member_client.post(reverse("monitors:run_retry", args=["hotels", failed.pk]))
    assert response["Location"] == reverse("monitors:detail", args=["hotels-europe"])
    assert failed.monitor.runs.filter(retry_of=failed).count() == 1


def test_an_old_slug_taken_by_a_new_monitor_names_the_new_one(
    member_client, credential, catalog, member_user
):
    renamed = make_monitor(credential=credential, owner=member_user, name="Hotels")
    rename(member_client, renamed, "Hotels Europe")

    response = member_client.post(
        reverse("monitors:create"), form_data(renamed.template_version, name="Hotels")
    )

    newcomer = Monitor.objects.get(slug="hotels")
    assert response["Location"] == reverse("monitors:detail", args=["hotels"])
    page = member_client.get(reverse("monitors:detail", args=["hotels"]))
    assert page.status_code == 200 and page.context["monitor"] == newcomer
    member_client.post(reverse("monitors:run_now", args=["hotels"]))
    assert newcomer.runs.count() == 1 and not renamed.runs.exists()
    # Renamed again, the newcomer leaves "hotels" behind as its own old address, not the first one's.
    rename(member_client, newcomer, "Hotels Asia")
    response = member_client.get(reverse("monitors:detail", args=["hotels"]))
    assert response["Location"] == reverse("monitors:detail", args=["hotels-asia"])


def test_a_slug_never_used_is_not_found(member_client, credential, catalog, member_user):
    monitor = make_monitor(credential=credential, owner=member_user, name="Hotels")
    rename(member_client, monitor, "Hotels Europe")

    assert member_client.get(reverse("monitors:detail", args=["pho"])).status_code == 404
    assert member_client.post(reverse("monitors:run_now", args=["pho"])).status_code == 404
    assert member_client.get(reverse("monitors:edit", args=["hotels-eu"])).status_code == 404
    assert not MonitorRun.objects.exists()


def test_deleting_a_monitor_frees_its_old_slugs(member_client, credential, catalog, member_user):
    monitor = make_monitor(credential=credential, owner=member_user, name="Hotels")
    rename(member_client, monitor, "Hotels Europe")

    monitor.delete()

    assert member_client.get(reverse("monitors:detail", args=["hotels"])).status_code == 404
    assert member_client.get(reverse("monitors:detail", args=["hotels-europe"])).status_code == 404


def test_an_old_address_checks_permissions_before_it_says_where_the_monitor_went(
    client, member_client, credential, catalog, member_user, django_user_model
):
    monitor = make_monitor(credential=credential, owner=member_user, name="Hotels")
    rename(member_client, monitor, "Hotels Europe")
    django_user_model.objects.create_user(username="nobody", password=PASSWORD)
    client.logout()
    client.login(username="nobody", password=PASSWORD)

    assert client.get(reverse("monitors:detail", args=["hotels"])).status_code == 403
    assert client.post(reverse("monitors:run_now", args=["hotels"])).status_code == 403
    assert not MonitorRun.objects.exists()


def test_an_edit_page_opened_before_a_rename_still_estimates_for_its_paused_monitor(
    member_client, credential, catalog, member_user
):
    monitor = make_monitor(credential=credential, owner=member_user, name="Hotels")
    rename(member_client, monitor, "Hotels Europe")
    member_client.post(reverse("monitors:state", args=["hotels-europe"]), {"action": "pause"})

    page = member_client.post(
        reverse("monitors:estimate") + "?monitor=hotels",  # the page's estimate, as it was opened
        form_data(monitor.template_version, name="Hotels", time_zone="UTC"),
        headers={"HX-Request": "true"},
    ).content.decode()

    assert "once resumed (it is paused)." in page


def test_the_link_in_an_alert_emailed_before_a_rename_leads_to_the_renamed_monitor(
    member_client, credential, catalog, member_user, settings
):
    settings.PUBLIC_BASE_URL = "https://dash.example.com"
    monitor = make_monitor(credential=credential, owner=member_user, name="Hotels")
    AlertDestination.objects.create(kind="email", monitor=monitor, emails="ops@example.com")
    alert_raise(key="renamed-test", kind=Alert.Kind.RUN_SKIPPED, message="Skipped: cap.", monitor=monitor)
    deliveries_due()  # as the scheduler's tick delivers it
    (link,) = re.findall(r"https://dash\.example\.com(\S+)", mail.outbox[0].body)
    rename(member_client, monitor, "Hotels Europe")

    response = member_client.get(link)

    assert response.status_code == 301
    assert response["Location"] == reverse("monitors:detail", args=["hotels-europe"])
