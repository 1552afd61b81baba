"""A username is one person in any case: “Bob” logs in as “bob”, failures in any case count against the one
account, and People, the Django admin and bootstrap refuse a second “BOB”."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = reverse("login")


def _person(username: str):
    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    user.groups.add(Group.objects.get(name="Members"))
    return user


def _login(username: str, password: str = PASSWORD, ip: str = "10.0.0.1"):
    return Client().post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def _logged_in_as(response):
    user = response.wsgi_request.user
    return user.get_username() if response.status_code == 302 and user.is_authenticated else None


def test_a_person_logs_in_with_their_username_in_any_case():
    """Made as “Bob” (createsuperuser, the admin), they typed “bob” and were told the password was wrong."""
    _person("Bob")

    assert _logged_in_as(_login("bob")) == "Bob"
    assert _logged_in_as(_login("BOB")) == "Bob"
    assert _logged_in_as(_login("bob", "wrong-password")) is None


def _older_case_twin(username: str, twin: str):
    """Two accounts differing only in case, as a database from before the rule may hold (every way of
    creating one now refuses the second)."""
    _person(username)
    user_model = get_user_model()
    user_model.objects.filter(pk=_person("twin-of-" + username).pk).update(username=twin)
    return user_model.objects.get(username=username), user_model.objects.get(username=twin)


def test_two_older_accounts_differing_only_in_case_each_log_in_by_their_exact_name():
    """Never the wrong account: the exact name is that account, another spelling is neither."""
    _older_case_twin("Bob", "bob")

    assert _logged_in_as(_login("Bob")) == "Bob"
    assert _logged_in_as(_login("bob")) == "bob"
    assert _logged_in_as(_login("BOB")) is None  # ambiguous: neither


def test_failed_logins_in_different_cases_lock_the_one_account_and_people_can_unlock_it(team_admin_client):
    """Each spelling counted on its own gave a guesser five tries per case variant of the name."""
    bob = _person("Bob")
    for index, spelling in enumerate(["bob", "BOB", "bOb", "boB", "BoB"]):
        _login(spelling, "wrong-password", ip=f"10.0.0.{index + 1}")

    locked = _login("Bob", ip="192.0.2.1")

    assert locked.status_code == 429
    assert "Too many failed logins for this account" in locked.content.decode()
    page = team_admin_client.get(reverse("team:people")).content.decode()
    assert reverse("team:person_unlock", args=[bob.pk]) in page
    team_admin_client.post(reverse("team:person_unlock", args=[bob.pk]))
    assert _logged_in_as(_login("bob", ip="192.0.2.1")) == "Bob"


def test_the_admin_refuses_to_rename_someone_to_another_persons_name_in_another_case(admin_client):
    _person("bob")
    alice = _person("alice")
    url = reverse("admin:auth_user_change", args=[alice.pk])
    form = {
        "username": "BOB",
        "email": "",
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "groups": [],
        "user_permissions": [],
    }

    response = admin_client.post(url, form)

    assert response.status_code == 200
    assert "A user with that username already exists." in response.content.decode()
    alice.refresh_from_db()
    assert alice.username == "alice"
    form["username"] = "Alice"  # one's own name in another case is fine
    assert admin_client.post(url, form).status_code == 302
    alice.refresh_from_db()
    assert alice.username == "Alice"


def test_the_admin_still_edits_one_of_two_older_accounts_differing_only_in_case(admin_client):
    """Refusing their unchanged name would leave them impossible to deactivate or rename in the admin."""
    _, older = _older_case_twin("bob", "Bob")
    form = {
        "username": "Bob",
        "email": "",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "groups": [],
        "user_permissions": [],
    }  # is_active left out: deactivated

    response = admin_client.post(reverse("admin:auth_user_change", args=[older.pk]), form)

    assert response.status_code == 302
    older.refresh_from_db()
    assert not older.is_active


def test_the_admin_refuses_to_add_another_persons_name_in_another_case(admin_client):
    _person("bob")

    response = admin_client.post(
        reverse("admin:auth_user_add"),
        {"username": "BOB", "password1": "A-long-new-password-1", "password2": "A-long-new-password-1"},
    )

    assert response.status_code == 200 and "already exists" in response.content.decode()
    assert get_user_model().objects.filter(username__iexact="bob").count() == 1


def test_bootstrap_refuses_an_admin_name_someone_has_in_another_case():
    _person("Admin")

    with pytest.raises(CommandError, match="exists"):
        call_command("bootstrap", "--username", "admin")

    assert not get_user_model().objects.filter(is_superuser=True).exists()


def test_createsuperuser_refuses_a_name_someone_has_in_another_case():
    """It checked only the exact name, so “BOB” beside “bob” made sign-in as either ambiguous."""
    _person("bob")

    with pytest.raises(CommandError, match="“bob” already exists"):
        call_command("createsuperuser", "--noinput", "--username", "BOB", "--email", "")

    assert get_user_model().objects.filter(username__iexact="bob").count() == 1


def test_createsuperuser_asking_refuses_a_name_someone_has_in_another_case(monkeypatch):
    """Typed at its prompts: refused with the same words, and nobody is created."""
    from django.contrib.auth.management.commands import createsuperuser

    _person("bob")
    answers = iter(["BOB", ""])  # username, email
    monkeypatch.setattr(createsuperuser, "input", lambda prompt="": next(answers), raising=False)
    monkeypatch.setattr(createsuperuser.getpass, "getpass", lambda prompt="": "A-long-new-password-1")

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    with pytest.raises(CommandError, match="“bob” already exists"):
        call_command("createsuperuser", stdin=Terminal(), stdout=io.StringIO(), stderr=io.StringIO())

    assert get_user_model().objects.filter(username__iexact="bob").count() == 1


def test_no_way_of_saving_a_person_makes_a_second_name_in_another_case():
    """The shell, a script or a command other than People's: creating or renaming is refused, while an
    unchanged name of an older twin still saves (their last login, a new password)."""
    user_model = get_user_model()
    _person("bob")
    alice = _person("alice")

    with pytest.raises(ValidationError, match="“bob” already exists"):
        user_model.objects.create_user(username="Bob", password=PASSWORD)
    alice.username = "BOB"
    with pytest.raises(ValidationError, match="“bob” already exists"):
        alice.save()

    assert sorted(user_model.objects.values_list("username", flat=True)) == ["alice", "bob"]
    alice.username = "Alice"
    alice.save()  # one's own name in another case
    _, twin = _older_case_twin("carol", "Carol")
    twin.set_password("Another-long-password-2")
    twin.save()
    assert _logged_in_as(_login("Carol", "Another-long-password-2")) == "Carol"


@pytest.mark.parametrize(
    ("typed", "password"),
    [("Bob", PASSWORD), ("bob", PASSWORD), ("bob", "wrong-password"), ("nobody", "wrong-password")],
    ids=["exact", "other-case", "wrong-password", "nobody"],
)
def test_a_login_looks_the_account_up_once(typed, password):
    """The lock check, the password check, the failure count and the lock check after it each looked the
    name up again (three to five reads of the people table per attempt)."""
    _person("Bob")
    client = Client()

    with CaptureQueriesContext(connection) as queries:
        client.post(LOGIN, {"username": typed, "password": password}, REMOTE_ADDR="10.0.0.1")

    reads = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT") and "auth_user" in q["sql"]
    ]
    assert len(reads) == 1, reads


def test_people_names_older_accounts_differing_only_in_case_and_how_they_sign_in(team_admin_client):
    """Nothing told an Admin why “BOB” could not sign in as either “Bob” or “bob”."""
    _older_case_twin("Bob", "bob")
    _person("carol")

    page = team_admin_client.get(reverse("team:people")).content.decode()

    assert "Bob and bob differ only in case" in page
    assert "each signs in only by their exact name" in page
    assert page.count("differ only in case") == 1  # carol has no twin
