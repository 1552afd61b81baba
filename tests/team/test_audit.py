"""The audit log records who changed what, never a secret; Admins read and filter it."""

import logging
from decimal import Decimal

import pytest
from django.urls import reverse

from tasks.models import AuditEntry, Credential
from tasks.team.audit import audit_record
from tasks.upstream import clients
from tasks.upstream.outcomes import UpstreamError

pytestmark = pytest.mark.django_db

SECRETS = ["aisa-live-SECRET-one-1234", "dfs-password-SECRET-two-5678"]


class _FailingUpstream:
    @classmethod
    def for_credential(cls, credential, **kwargs):
        return cls()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        pass

    def models(self, provider):
        raise UpstreamError("DataForSEO answered 401: wrong login or password")


def _every_credential_action(client, monkeypatch):
    monkeypatch.setattr(clients, "LLMResponsesClient", _FailingUpstream)
    client.post(
        reverse("team:credential_add"),
        {
            "name": "Key",
            "kind": "aisa",
            "secret": SECRETS[0],
            "price_multiplier": "1",
            "save_unverified": "on",
        },
    )
    client.post(
        reverse("team:credential_add"),
        {
            "name": "Direct",
            "kind": "dataforseo",
            "login": "me@example.com",
            "secret": SECRETS[1],
            "price_multiplier": "1",
            "save_unverified": "on",
        },
    )
    direct = Credential.objects.get(name="Direct")
    client.post(
        reverse("team:credential_edit", args=[direct.pk]),
        {"form": "secret", "login": "me@example.com", "secret": SECRETS[0]},  # refused: the upstream fails
    )
    client.post(
        reverse("team:credential_edit", args=[direct.pk]),
        {"form": "secret", "login": "me@example.com", "secret": SECRETS[0], "save_unverified": "on"},
    )
    client.post(reverse("team:credential_verify", args=[direct.pk]))
    client.post(reverse("team:credential_default", args=[direct.pk]))
    client.post(reverse("team:credential_disable", args=[direct.pk]))


def test_no_secret_ever_appears_in_audit_entries_pages_or_logs(team_admin_client, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)

    _every_credential_action(team_admin_client, monkeypatch)

    entries = list(AuditEntry.objects.values_list("action", "object_repr", "changes"))
    assert [e[0] for e in entries] == [
        "credential.disable",
        "credential.set_default",
        "credential.verify",
        "credential.replace_secret",
        "credential.create",
        "credential.create",
    ]
    dumped = repr(entries)
    pages = team_admin_client.get(reverse("team:audit_log")).content.decode()
    pages += team_admin_client.get(reverse("team:credential_list")).content.decode()
    admin_page = team_admin_client.get("/admin/tasks/auditentry/")
    pages += admin_page.content.decode()
    for secret in SECRETS:
        assert secret not in dumped
        assert secret not in pages
        assert secret not in caplog.text
    created = AuditEntry.objects.filter(action="credential.create").last()
    assert created.changes["secret_hint"] == "1234"
    assert len(created.changes["secret_fingerprint"]) == 12


def test_audit_record_drops_values_under_secret_names(team_admin):
    entry = audit_record(
        actor=team_admin,
        action="test",
        obj=team_admin,
        changes={
            "password": "hunter2",
            "nested": {"api_key": "k", "token": "t", "secret_hint": "abcd"},
            "secret": "s",
            "secret_fingerprint": "f",
            "limit": Decimal("1.50"),
        },
    )

    assert entry.changes == {
        "password": "[removed]",
        "nested": {"api_key": "[removed]", "token": "[removed]", "secret_hint": "abcd"},
        "secret": "[removed]",
        "secret_fingerprint": "f",
        "limit": "1.5",
    }


def test_the_audit_page_filters_by_action_person_object_and_date(team_admin_client, team_admin, member_user):
    audit_record(actor=team_admin, action="budget.create", obj=member_user, changes={"limit": "5"})
    audit_record(
        actor=member_user,
        action="person.role",
        obj=team_admin,
        changes={"role": {"from": "Member", "to": "Admin"}},
    )

    everything = team_admin_client.get(reverse("team:audit_log")).content.decode()
    by_action = team_admin_client.get(reverse("team:audit_log"), {"action": "person.role"}).content.decode()
    by_actor = team_admin_client.get(reverse("team:audit_log"), {"actor": team_admin.pk}).content.decode()
    fragment = team_admin_client.get(
        reverse("team:audit_log"), {"date_from": "2000-01-01", "q": "team"}, headers={"HX-Request": "true"}
    ).content.decode()

    assert "budget.create" in everything and "person.role" in everything
    assert "Member → Admin" in everything
    assert "person.role" in by_action and '<td class="mono small">budget.create' not in by_action
    assert "budget.create" in by_actor and '<td class="mono small">person.role' not in by_actor
    assert fragment.lstrip().startswith('<section id="audit-entries">')
    assert "person.role" in fragment


def test_filtering_in_place_shows_a_bad_filters_message_and_the_active_count(team_admin_client, team_admin):
    """The filters are swapped in place with the entries: a refused date says so there (the entries are then
    unfiltered), and the panel's count of active filters follows."""
    audit_record(actor=team_admin, action="budget.create", obj=team_admin)

    refused = team_admin_client.get(
        reverse("team:audit_log"), {"date_from": "1999-01-01"}, headers={"HX-Request": "true"}
    ).content.decode()
    filtered = team_admin_client.get(
        reverse("team:audit_log"), {"action": "budget.create", "q": "x"}, headers={"HX-Request": "true"}
    ).content.decode()

    assert "Give a date between 2000 and 2999." in refused
    assert '<details class="filters-panel" open>' in refused
    assert "· 2 active" in filtered


def test_reversed_audit_dates_say_so_instead_of_matching_nothing(team_admin_client, team_admin):
    """As on the task list: "To" before "From" is a message at the field, not "No entries match"."""
    audit_record(actor=team_admin, action="budget.create", obj=team_admin)

    html = team_admin_client.get(
        reverse("team:audit_log"), {"date_from": "2026-12-10", "date_to": "2026-12-01"}
    ).content.decode()

    assert "“To” is before “From”." in html
    assert 'value="2026-12-10"' in html and 'value="2026-12-01"' in html


@pytest.mark.parametrize(
    "query",
    [
        {"date_from": "yesterday"},
        {"actor": "abc"},
        {"action": "nope"},
        {"page": "x"},
        {"date_to": "9999-12-31"},
    ],
)
def test_bad_audit_filters_never_500_and_keep_the_input(team_admin_client, query):
    response = team_admin_client.get(reverse("team:audit_log"), query)

    assert response.status_code == 200


@pytest.mark.django_db
def test_times_in_changes_read_in_local_time_like_the_when_column(team_admin_client, team_admin, settings):
    """A monitor run's slot or a one-time password's expiry is stored as UTC ISO text; shown as it is,
    “2026-12-07T02:20:31.825919+00:00” sat beside a When of “6 Dec 2026 21:20:31” (New York)."""
    from datetime import UTC, datetime

    settings.TIME_ZONE = "America/New_York"
    slot = datetime(2026, 12, 7, 2, 20, 31, 825919, tzinfo=UTC)
    audit_record(
        actor=team_admin,
        action="monitor.run_failed",
        obj=team_admin,
        changes={"slot": slot, "until": {"from": None, "to": slot}, "note": "2026-12-07 is a date in text"},
    )

    html = team_admin_client.get(reverse("team:audit_log")).content.decode()

    assert "2026-12-07T02:20:31" not in html
    assert "<dd>6 Dec 2026 21:20:31</dd>" in html
    assert "<dd>— → 6 Dec 2026 21:20:31</dd>" in html
    assert "2026-12-07 is a date in text" in html  # text that is not a timestamp is left alone
