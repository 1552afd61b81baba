"""People: create with a one-time password shown once, change roles, deactivate; the command does the same."""

import re
import threading

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from tasks.models import AuditEntry
from tasks.roles import ADMINS, MEMBERS
from tasks.team import people
from tasks.team.people import person_role
from tests.concurrency import run_concurrently
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_an_admin_creates_a_person_who_logs_in_with_the_password_shown_once(team_admin_client):
    response = team_admin_client.post(
        reverse("team:person_create"), {"username": "carol", "email": "carol@example.com", "role": MEMBERS}
    )
    assert response.status_code == 302

    page = team_admin_client.get(reverse("team:people"))
    password = page.context["new_password"]["password"]
    assert password in page.content.decode()
    assert page["Cache-Control"] == "no-store"
    assert password not in team_admin_client.get(reverse("team:people")).content.decode()

    carol = get_user_model().objects.get(username="carol")
    assert person_role(carol) == MEMBERS and not carol.is_staff
    assert Client().login(username="carol", password=password)
    entry = AuditEntry.objects.get(action="person.create")
    assert password not in repr(entry.changes)
    assert entry.changes["role"] == "Member"


def test_a_taken_username_is_refused_and_the_input_kept(team_admin_client, member_user):
    response = team_admin_client.post(
        reverse("team:person_create"), {"username": "MEMBER", "email": "m@example.com", "role": ADMINS}
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "Someone with this username exists" in html
    assert 'value="m@example.com"' in html


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("usernames", [("carol", "carol"), ("Carol", "carol")])
def test_two_presses_of_save_add_one_person_and_no_server_error(team_admin, monkeypatch, usernames):
    """Save pressed twice on Add a person (no script to stop the second press, or two Admins, one typing
    "Carol" and the other "carol"): both requests pass the username check before either saves; the second
    is told the username is taken."""
    both_checked = threading.Barrier(2)
    one_time_password = people._one_time_password

    def password():
        both_checked.wait(timeout=10)
        return one_time_password()

    monkeypatch.setattr(people, "_one_time_password", password)

    def press(i):
        client = Client()
        client.force_login(team_admin)
        return client.post(
            reverse("team:person_create"),
            {"username": usernames[i], "email": "c@example.com", "role": MEMBERS},
        )

    responses = run_concurrently(press, 2)

    assert sorted((getattr(r, "status_code", r) for r in responses), key=str) == [200, 302]
    refused = next(r for r in responses if r.status_code == 200).content.decode()
    assert "Someone with this username exists." in refused
    assert 'value="c@example.com"' in refused
    assert get_user_model().objects.filter(username__iexact="carol").count() == 1


def test_role_changes_are_audited_and_grant_the_admin_pages(team_admin_client, member_user):
    team_admin_client.post(reverse("team:person_role", args=[member_user.pk]), {"role": ADMINS})

    member_user.refresh_from_db()
    assert person_role(member_user) == ADMINS and member_user.is_staff
    assert member_user.has_perm("tasks.view_spend")
    entry = AuditEntry.objects.get(action="person.role")
    assert entry.changes == {"role": {"from": "Member", "to": "Admin"}}

    team_admin_client.post(reverse("team:person_role", args=[member_user.pk]), {"role": MEMBERS})
    member_user = get_user_model().objects.get(pk=member_user.pk)
    assert person_role(member_user) == MEMBERS and not member_user.is_staff
    assert not member_user.has_perm("tasks.view_spend")


def test_an_admin_cannot_lock_themselves_out(team_admin_client, team_admin):
    demoted = team_admin_client.post(
        reverse("team:person_role", args=[team_admin.pk]), {"role": MEMBERS}, follow=True
    )
    deactivated = team_admin_client.post(
        reverse("team:person_active", args=[team_admin.pk]), {"active": "0"}, follow=True
    )

    assert "cannot remove your own Admin role" in demoted.content.decode()
    assert "cannot deactivate yourself" in deactivated.content.decode()
    team_admin.refresh_from_db()
    assert team_admin.is_active and person_role(team_admin) == ADMINS


def test_an_admin_cannot_give_themselves_a_one_time_password(team_admin_client, team_admin):
    """Their session would end with their old password (the new one never shown): a lock-out. Their own
    row offers the password-change page instead."""
    page = team_admin_client.get(reverse("team:people")).content.decode()
    response = team_admin_client.post(reverse("team:person_password", args=[team_admin.pk]), follow=True)

    assert reverse("team:person_password", args=[team_admin.pk]) not in page
    assert reverse("password_change") in page
    assert response.wsgi_request.user == team_admin  # still logged in
    assert "Change your own password" in response.content.decode()
    assert Client().login(username=team_admin.get_username(), password=PASSWORD)
    assert not AuditEntry.objects.filter(action="person.reset_password").exists()


def test_an_admin_cannot_take_over_a_superuser_with_a_one_time_password(
    team_admin_client, admin_client, admin_user
):
    """The password is shown to the Admin who asks: for a superuser it handed an Admin, whose Django admin
    follows their permissions, the superuser's every power (and locked the owner out of their password)."""
    url = reverse("team:person_password", args=[admin_user.pk])

    page = team_admin_client.get(reverse("team:people")).content.decode()
    response = team_admin_client.post(url, follow=True)

    assert url not in page
    assert "Only a superuser can give a superuser a one-time password" in response.content.decode()
    assert response.context["new_password"] is None
    admin_user.refresh_from_db()
    assert admin_user.check_password("password")  # pytest-django's admin_user password
    assert not AuditEntry.objects.filter(action="person.reset_password").exists()
    other = get_user_model().objects.create_superuser("other-owner", password=PASSWORD)
    admin_client.post(reverse("team:person_password", args=[other.pk]))  # a superuser still can
    assert admin_client.get(reverse("team:people")).context["new_password"]["username"] == "other-owner"


def test_a_deactivated_person_can_no_longer_log_in(team_admin_client, member_user):
    team_admin_client.post(reverse("team:person_active", args=[member_user.pk]), {"active": "0"})

    assert not Client().login(username="member", password=PASSWORD)
    assert AuditEntry.objects.filter(action="person.deactivate").exists()


def test_a_new_one_time_password_replaces_the_old_one(team_admin_client, member_user):
    team_admin_client.post(reverse("team:person_password", args=[member_user.pk]))

    password = team_admin_client.get(reverse("team:people")).context["new_password"]["password"]
    assert Client().login(username="member", password=password)
    assert not Client().login(username="member", password=PASSWORD)


def test_a_new_one_time_password_asks_first_naming_what_the_person_loses(team_admin_client, member_user):
    """One press ended the person's own password at once, with no question, unlike Deactivate."""
    page = team_admin_client.get(reverse("team:people")).content.decode()

    button = re.search(
        r'action="{}".*?</form>'.format(re.escape(reverse("team:person_password", args=[member_user.pk]))),
        page,
        re.S,
    ).group(0)
    assert (
        'data-confirm="Give member a new one-time password? The password they use now stops working at once.'
        in button
    )


def test_a_bad_role_is_refused_without_500(team_admin_client, member_user):
    response = team_admin_client.post(
        reverse("team:person_role", args=[member_user.pk]), {"role": "Owners"}, follow=True
    )

    assert response.status_code == 200
    assert "Choose a role" in response.content.decode()


def test_the_create_person_command_prints_a_one_time_password(capsys):
    call_command("create_person", "dave", "--role", "admin", "--email", "dave@example.com")

    output = capsys.readouterr().out
    dave = get_user_model().objects.get(username="dave")
    password = output.rsplit(": ", 1)[1].strip()
    assert person_role(dave) == ADMINS and dave.is_staff
    assert dave.check_password(password)
    with pytest.raises(CommandError, match="Someone with this username exists"):
        call_command("create_person", "Dave")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["", "--role", "member"], "This field is required."),
        (["carol smith"], "Letters, digits and @ . + - _ only."),
        (["c" * 151], "at most 150 characters"),
        (["carol", "--email", "carol-at-example"], "Enter a valid email address."),
    ],
    ids=["empty", "space", "too-long", "email"],
)
def test_the_create_person_command_refuses_what_the_people_page_refuses(arguments, message):
    """It saved a name with a space, 151 characters (a database error on PostgreSQL) or an unreadable email
    address, and an empty name was a traceback; it now says what is wrong, as the page does."""
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("create_person", *arguments)

    assert not get_user_model().objects.exists()
