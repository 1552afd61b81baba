"""Sign-in locks on People: an Admin sees the addresses locked after too many failed logins and clears one
(confirmed, audited); a Member cannot; a stale or odd request changes nothing and never errors."""

import pytest
from django.test import Client
from django.urls import reverse

from tasks.models import AuditEntry
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = reverse("login")
UNLOCK = reverse("team:address_unlock")


def _login(username: str, password: str, ip: str):
    return Client().post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def _lock_address(ip: str = "10.9.9.9", tries: int = 5) -> None:
    for number in range(tries):
        _login(f"guess-{number}", "wrong-password", ip)


def _logged_in(response) -> bool:
    return response.status_code == 302 and response.wsgi_request.user.is_authenticated


def test_an_admin_sees_a_locked_address_and_clearing_it_lets_it_log_in_again(member_user, team_admin_client):
    _lock_address("10.9.9.9")
    assert _login("member", PASSWORD, "10.9.9.9").status_code == 429

    page = team_admin_client.get(reverse("team:people")).content.decode()
    assert "Sign-in locks" in page and "10.9.9.9" in page
    assert f'action="{UNLOCK}"' in page and 'value="10.9.9.9"' in page
    assert 'data-confirm="Unlock the address 10.9.9.9?' in page
    assert "guess-0" not in page  # what was typed as a username may be a password typed in the wrong box

    response = team_admin_client.post(UNLOCK, {"ip_address": "10.9.9.9"}, follow=True)

    assert "10.9.9.9 can log in again" in response.content.decode()
    assert _logged_in(_login("member", PASSWORD, "10.9.9.9"))
    entry = AuditEntry.objects.get(action="address.unlock")
    # Five guesses and the refused login while locked (axes counts it too).
    assert entry.object_repr == "10.9.9.9" and entry.changes == {"failed_attempts_cleared": 6}
    assert "10.9.9.9" not in team_admin_client.get(reverse("team:people")).content.decode()
    audit = team_admin_client.get(reverse("team:audit_log")).content.decode()
    assert "address.unlock" in audit and "10.9.9.9" in audit


def test_an_address_below_the_limit_is_not_listed(team_admin_client):
    _lock_address("10.9.9.9", tries=4)

    page = team_admin_client.get(reverse("team:people")).content.decode()

    assert "10.9.9.9" not in page and "No address is locked" in page


def test_a_member_can_neither_see_nor_clear_address_locks(member_user, member_client):
    _lock_address("10.9.9.9")

    assert member_client.get(reverse("team:people")).status_code == 403
    assert member_client.post(UNLOCK, {"ip_address": "10.9.9.9"}).status_code == 403
    assert _login("member", PASSWORD, "10.9.9.9").status_code == 429
    assert not AuditEntry.objects.filter(action="address.unlock").exists()


@pytest.mark.parametrize("value", ["10.1.1.1", "", "not an address", "x" * 5000, " 10.9.9.9x"])
def test_clearing_an_address_that_is_not_locked_changes_nothing_and_says_so(value, team_admin_client):
    _lock_address("10.9.9.9")

    response = team_admin_client.post(UNLOCK, {"ip_address": value}, follow=True)

    assert response.status_code == 200
    assert (
        "is not locked" in response.content.decode() or "Choose a locked address" in response.content.decode()
    )
    assert not AuditEntry.objects.filter(action="address.unlock").exists()
    assert _login("guess-9", "wrong-password", "10.9.9.9").status_code == 429


def test_the_address_lock_message_sends_admins_to_the_people_page(member_user):
    _lock_address("10.9.9.9")

    html = _login("member", PASSWORD, "10.9.9.9").content.decode()

    assert "Too many failed logins from this address" in html
    assert "Sign-in locks on the People page" in html
