"""A monitor whose credential was disabled keeps its schedule, but every run of it fails, sending nothing:
its page says so before the next run, and how to go on."""

import pytest
from django.urls import reverse

from tasks.models import Credential, Monitor
from tests.monitors.factories import make_monitor

pytestmark = pytest.mark.django_db


def other_credential(credential) -> Credential:
    other = Credential(name="Second", kind=credential.kind, base_url=credential.base_url)
    other.set_secret("another-key")
    other.save()
    return other


def test_a_monitor_on_a_disabled_credential_says_its_runs_will_not_be_sent(
    member_client, credential, catalog, member_user
):
    second = other_credential(credential)
    monitor = make_monitor(credential=credential, claude_credential=second, owner=member_user)
    Credential.objects.filter(pk=second.pk).update(is_active=False)

    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()

    assert (
        "Its runs will fail, sending nothing: claude-3-5-haiku: the credential “Second” is disabled. Edit "
        "the monitor to choose another credential for that model."
    ) in page.replace("&#x27;", "'")


def test_a_monitor_on_active_credentials_or_archived_says_nothing_of_it(
    member_client, credential, catalog, member_user
):
    monitor = make_monitor(credential=credential, owner=member_user)
    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    assert "Its runs will fail" not in page
    Credential.objects.filter(pk=credential.pk).update(is_active=False)
    Monitor.objects.filter(pk=monitor.pk).update(state=Monitor.State.ARCHIVED)
    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    assert "Its runs will fail" not in page
