"""Login throttling (django-axes): failures lock the username (from anywhere) and the address (for any
username), the login page says so, a locked attempt hashes no password, and an Admin unlocks."""

from datetime import timedelta

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from tasks.models import AuditEntry
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


LOGIN = reverse("login")


def _login(username: str, password: str, ip: str = "10.0.0.1", client: Client | None = None):
    client = client or Client(REMOTE_ADDR=ip)
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def _logged_in(response) -> bool:
    return response.status_code == 302 and response.wsgi_request.user.is_authenticated


def test_thirty_wrong_passwords_lock_the_account_and_the_right_one_then_fails_with_a_message(member_user):
    for _ in range(30):
        _login("member", "wrong-password")

    response = _login("member", PASSWORD)

    html = response.content.decode()
    assert response.status_code == 429
    assert not response.wsgi_request.user.is_authenticated
    assert "Too many failed logins for this account" in html
    assert "An Admin can unlock it on the People page" in html
    assert 'name="password"' in html  # the login page, not a bare error page
    assert 'value="member"' in html  # the username is kept


def test_a_locked_username_is_locked_from_another_address_too(member_user):
    for _ in range(5):
        _login("member", "wrong-password", ip="10.0.0.1")

    response = _login("member", PASSWORD, ip="192.0.2.77")

    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()


def test_an_address_that_tries_many_usernames_is_locked_for_every_username(member_user):
    for number in range(5):
        _login(f"guess-{number}", "wrong-password", ip="10.9.9.9")

    locked = _login("member", PASSWORD, ip="10.9.9.9")
    elsewhere = _login("member", PASSWORD, ip="10.0.0.2")

    assert locked.status_code == 429
    assert _logged_in(elsewhere)


def test_an_address_lock_says_it_is_the_address_and_how_it_is_lifted(member_user, team_admin_client):
    """The address is listed under Sign-in locks on People; no person is shown locked out for it."""
    for number in range(5):
        _login(f"guess-{number}", "wrong-password", ip="10.9.9.9")

    html = _login("member", PASSWORD, ip="10.9.9.9").content.decode()

    assert "Too many failed logins from this address" in html
    assert "Sign-in locks on the People page" in html
    page = team_admin_client.get(reverse("team:people")).content.decode()
    assert "10.9.9.9" in page and "Locked out" not in page


def test_a_few_failures_then_the_right_password_still_log_in(member_user):
    for _ in range(4):
        _login("member", "wrong-password")

    assert _logged_in(_login("member", PASSWORD))


def test_a_locked_attempt_hashes_no_password(member_user, monkeypatch):
    for _ in range(5):
        _login("member", "wrong-password")
    checks = []
    original = MD5PasswordHasher.encode  # the tests' hasher: checking a password or faking one encodes
    monkeypatch.setattr(
        MD5PasswordHasher, "encode", lambda self, *a, **kw: checks.append(1) or original(self, *a, **kw)
    )

    for _ in range(3):
        assert _login("member", PASSWORD).status_code == 429
        assert _login("nobody", "anything").status_code == 429

    assert checks == []
    _login("someone-else", "anything", ip="192.0.2.9")  # not locked: its password is hashed
    assert checks


def test_the_lock_lifts_after_the_cool_off(member_user, settings):
    from axes.models import AccessAttempt

    for _ in range(5):
        _login("member", "wrong-password")
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.first().attempt_time - timedelta(hours=2))

    assert _logged_in(_login("member", PASSWORD))


def test_an_admin_unlocks_a_person_on_the_people_page(member_user, team_admin_client):
    for _ in range(30):
        _login("member", "wrong-password", ip="10.0.0.1")
    page = team_admin_client.get(reverse("team:people")).content.decode()
    assert "Locked out" in page and reverse("team:person_unlock", args=[member_user.pk]) in page

    team_admin_client.post(reverse("team:person_unlock", args=[member_user.pk]))

    assert _logged_in(_login("member", PASSWORD, ip="192.0.2.1"))
    assert "Locked out" not in team_admin_client.get(reverse("team:people")).content.decode()
    assert AuditEntry.objects.filter(action="person.unlock", object_id=str(member_user.pk)).exists()


def test_unlocking_a_person_no_longer_locked_says_so_and_records_nothing(member_user, team_admin_client):
    """Pressed twice (or by two Admins, or after the cool-off), the second press said “member can log in
    again (failed attempts cleared)” and added an audit entry for clearing nothing, unlike an address."""
    for _ in range(5):
        _login("member", "wrong-password")
    url = reverse("team:person_unlock", args=[member_user.pk])
    first = team_admin_client.post(url, follow=True).content.decode()

    again = team_admin_client.post(url, follow=True).content.decode()

    assert "member can log in again" in first
    assert "member is not locked (any more): nothing changed." in again
    assert "can log in again" not in again
    assert AuditEntry.objects.filter(action="person.unlock").count() == 1


def test_the_unlock_is_audited_with_the_number_of_failed_logins_it_cleared(member_user, team_admin_client):
    """Not the number of axes' records (one per address): five failed logins read "5", not "1"."""
    for _ in range(5):
        _login("member", "wrong-password", ip="10.0.0.1")

    team_admin_client.post(reverse("team:person_unlock", args=[member_user.pk]))

    entry = AuditEntry.objects.get(action="person.unlock")
    assert entry.changes == {"failed_attempts_cleared": 5}


def test_a_member_cannot_unlock(member_user, member_client):
    assert member_client.post(reverse("team:person_unlock", args=[member_user.pk])).status_code == 403


def test_the_axes_reset_commands_unlock_from_the_command_line(member_user):
    for _ in range(5):
        _login("member", "wrong-password", ip="10.0.0.1")

    call_command("axes_reset_username", "member")
    call_command("axes_reset_ip", "10.0.0.1")

    assert _logged_in(_login("member", PASSWORD, ip="10.0.0.1"))


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_one_counted(member_user, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for number in range(5):
        Client().post(
            LOGIN,
            {"username": f"guess-{number}", "password": "x"},
            REMOTE_ADDR="10.0.0.254",  # the proxy
            HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.9",  # a forged entry, then the real client
        )

    other_client = Client().post(
        LOGIN,
        {"username": "member", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.254",
        HTTP_X_FORWARDED_FOR="203.0.113.10",
    )
    attacker = Client().post(
        LOGIN,
        {"username": "member", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.254",
        HTTP_X_FORWARDED_FOR="203.0.113.9",
    )

    assert _logged_in(other_client)
    assert attacker.status_code == 429


def test_a_username_longer_than_the_lock_table_holds_is_a_failed_login_not_an_error():
    response = _login("x" * 5000, "wrong-password")

    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
