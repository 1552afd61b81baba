"""A deactivated person's monitors keep running (and spending) under their name: the monitors list, the
monitor's page and the People page's Deactivate confirm say so, so an Admin can pause them."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from tasks.models import Monitor
from tasks.team import people
from tests.monitors.factories import make_monitor

pytestmark = pytest.mark.django_db


def _deactivate(member_user, team_admin):
    people.person_set_active(actor=team_admin, person=member_user, active=False)


def test_the_list_and_the_page_flag_a_running_monitor_whose_owner_is_deactivated(
    client, credential, member_user, team_admin
):
    monitor = make_monitor(credential=credential, owner=member_user, now=datetime.now(UTC))
    client.force_login(team_admin)
    assert "owner deactivated" not in client.get(reverse("monitors:list")).content.decode()

    _deactivate(member_user, team_admin)

    listing = client.get(reverse("monitors:list")).content.decode()
    assert "member <span" in listing and "owner deactivated" in listing
    page = client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    assert "owner member (deactivated)" in page
    assert "Its owner member is deactivated, but it still runs on schedule" in page


def test_a_paused_monitor_of_a_deactivated_owner_is_not_said_to_run(
    client, credential, member_user, team_admin
):
    monitor = make_monitor(credential=credential, owner=member_user, now=datetime.now(UTC))
    Monitor.objects.filter(pk=monitor.pk).update(state=Monitor.State.PAUSED, next_run_at=None)
    _deactivate(member_user, team_admin)
    client.force_login(team_admin)

    page = client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()

    assert "owner member (deactivated)" in page
    assert "still runs on schedule" not in page


def test_the_deactivate_confirm_names_the_persons_active_monitors(team_admin_client, credential, member_user):
    make_monitor(credential=credential, owner=member_user, name="Hotels", now=datetime.now(UTC))
    make_monitor(credential=credential, owner=member_user, name="Pho", now=datetime.now(UTC))
    paused = make_monitor(credential=credential, owner=member_user, name="Old", now=datetime.now(UTC))
    Monitor.objects.filter(pk=paused.pk).update(state=Monitor.State.PAUSED, next_run_at=None)

    page = team_admin_client.get(reverse("team:people")).content.decode()

    assert (
        "Deactivate member? They cannot log in until reactivated. Their 2 active monitors "
        "(Hotels, Pho) keep running and spending; pause them on their pages if they should stop."
    ) in page


def test_the_deactivate_confirm_of_one_active_monitor_and_of_none(team_admin_client, credential, member_user):
    page = team_admin_client.get(reverse("team:people")).content.decode()
    assert 'data-confirm="Deactivate member? They cannot log in until reactivated.">' in page

    make_monitor(credential=credential, owner=member_user, name="Hotels", now=datetime.now(UTC))

    page = team_admin_client.get(reverse("team:people")).content.decode()
    assert (
        "Their active monitor (Hotels) keeps running and spending; pause it on its page if it should stop."
    ) in page
