"""One-time passwords: a person created or reset by an Admin must choose their own password at their
first login (nothing else is reachable until then), the one-time password expires, and the change page
is the product's own."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tasks.models import AuditEntry
from tasks.roles import MEMBERS
from tasks.team import people
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-passphrase-42"


def _one_time_passwords():
    from tasks.models import OneTimePassword

    return OneTimePassword.objects


@pytest.fixture
def invited(team_admin):
    """A Member an Admin just created, and the one-time password they were given."""
    return people.person_create(actor=team_admin, username="carol", email="carol@example.com", role=MEMBERS)


def _log_in(username: str, password: str) -> Client:
    client = Client()
    client.post(reverse("login"), {"username": username, "password": password})
    return client


def test_after_logging_in_with_a_one_time_password_only_the_change_page_and_logout_open(invited):
    _, password = invited
    client = _log_in("carol", password)

    for url in (reverse("history:home"), reverse("history:task_list"), reverse("builder:new"), "/admin/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"] == reverse("password_change"), url
    htmx = client.get(reverse("history:task_list"), headers={"HX-Request": "true"})
    assert htmx["HX-Redirect"] == reverse("password_change")
    page = client.get(reverse("password_change"))
    assert page.status_code == 200
    assert "<h1>Choose your own password</h1>" in page.content.decode()
    assert "<title>Choose your own password · " in page.content.decode()  # the tab says it too
    assert client.post(reverse("logout")).status_code == 302
    assert not client.get(reverse("history:home")).wsgi_request.user.is_authenticated


def test_the_change_page_asks_for_the_one_time_password_by_that_name(invited, member_client):
    """It asked for an “Old password” from someone who has only ever had the one-time password."""
    _, password = invited
    client = _log_in("carol", password)

    page = client.get(reverse("password_change")).content.decode()
    wrong = client.post(
        reverse("password_change"),
        {"old_password": "not-it", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    ).content.decode()

    assert '<label for="id_old_password">One-time password' in page
    assert "The one-time password you were given was entered incorrectly" in wrong
    own = member_client.get(reverse("password_change")).content.decode()
    assert '<label for="id_old_password">Old password' in own  # a change when one likes is unchanged


def test_choosing_ones_own_password_opens_the_product_and_ends_the_one_time_password(invited):
    user, password = invited
    client = _log_in("carol", password)

    response = client.post(
        reverse("password_change"),
        {"old_password": password, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        follow=True,
    )

    assert response.redirect_chain[-1][0] == reverse("password_change_done")
    assert client.get(reverse("history:task_list")).status_code == 200  # still logged in, and let through
    assert not _one_time_passwords().filter(user=user).exists()
    assert not Client().login(username="carol", password=password)
    assert Client().login(username="carol", password=NEW_PASSWORD)
    entry = AuditEntry.objects.get(action="person.change_password")
    assert entry.actor == user and entry.changes == {"replaced_one_time": True}
    assert NEW_PASSWORD not in repr(entry.changes)


def test_a_weak_new_password_is_refused_at_the_field(invited):
    _, password = invited
    client = _log_in("carol", password)

    response = client.post(
        reverse("password_change"), {"old_password": password, "new_password1": "123", "new_password2": "123"}
    )

    assert response.status_code == 200
    assert "This password is too short" in response.content.decode()
    assert client.get(reverse("history:home")).status_code == 302  # still required


def test_the_one_time_password_cannot_be_chosen_as_ones_own(invited):
    """The page says the password given "then stops working": choosing it again would keep the password an
    Admin saw (and that was shown on screen) working for good."""
    user, password = invited
    client = _log_in("carol", password)

    response = client.post(
        reverse("password_change"),
        {"old_password": password, "new_password1": password, "new_password2": password},
    )

    assert response.status_code == 200
    assert "Choose a new password, not the one you have now." in response.content.decode()
    assert client.get(reverse("history:home")).status_code == 302  # still required
    assert _one_time_passwords().filter(user=user).exists()


def test_an_expired_one_time_password_no_longer_logs_in(invited):
    user, password = invited
    _one_time_passwords().filter(user=user).update(expires_at=timezone.now() - timedelta(minutes=1))

    response = Client().post(reverse("login"), {"username": "carol", "password": password})

    assert response.status_code == 200
    assert not response.wsgi_request.user.is_authenticated
    assert "This one-time password has expired. Ask an Admin for a new one." in response.content.decode()


def test_a_session_whose_one_time_password_expires_is_logged_out(invited):
    user, password = invited
    client = _log_in("carol", password)
    _one_time_passwords().filter(user=user).update(expires_at=timezone.now() - timedelta(minutes=1))
    session = client.session
    session["accounts.one_time_password_expires"] = (timezone.now() - timedelta(minutes=1)).isoformat()
    session.save()

    response = client.get(reverse("password_change"), follow=True)

    assert not response.wsgi_request.user.is_authenticated
    assert "Your one-time password has expired" in response.content.decode()


def test_the_one_time_password_lasts_as_configured(team_admin, settings):
    settings.ONE_TIME_PASSWORD_MAX_AGE = timedelta(hours=5)

    user, _ = people.person_create(actor=team_admin, username="erin", role=MEMBERS)

    expires = _one_time_passwords().get(user=user).expires_at
    assert timedelta(hours=4, minutes=59) < expires - timezone.now() <= timedelta(hours=5)
    entry = AuditEntry.objects.get(action="person.create")
    assert entry.changes["must_change"] is True and "one_time_until" in entry.changes


def test_a_new_one_time_password_must_be_changed_too(team_admin_client, member_user):
    team_admin_client.post(reverse("team:person_password", args=[member_user.pk]))
    password = team_admin_client.get(reverse("team:people")).context["new_password"]["password"]

    client = _log_in("member", password)

    assert client.get(reverse("history:home"))["Location"] == reverse("password_change")
    assert AuditEntry.objects.get(action="person.reset_password").changes["must_change"] is True
    assert "Must choose a password" in team_admin_client.get(reverse("team:people")).content.decode()


def test_the_create_person_command_gives_a_one_time_password_too():
    call_command("create_person", "frank")

    assert _one_time_passwords().filter(user__username="frank").exists()


def test_a_password_set_any_other_way_ends_the_one_time_password(invited):
    """What `manage.py changepassword` and the Django admin do: set_password, then save."""
    user, _ = invited

    user.set_password(NEW_PASSWORD)
    user.save()

    assert not _one_time_passwords().filter(user=user).exists()
    client = _log_in("carol", NEW_PASSWORD)
    assert client.get(reverse("history:task_list")).status_code == 200


def test_the_password_change_page_uses_the_product_layout(member_client):
    html = member_client.get(reverse("password_change")).content.decode()

    assert "Change your password" in html
    assert 'class="topbar"' in html and reverse("history:task_list") in html
    assert "Django administration" not in html and 'href="/admin/"' not in html
    done = member_client.get(reverse("password_change_done")).content.decode()
    assert 'class="topbar"' in done and 'href="/admin/"' not in done


def test_an_ordinary_password_change_is_audited_without_the_password(member_client, member_user):
    member_client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )

    member_user = get_user_model().objects.get(pk=member_user.pk)
    assert member_user.check_password(NEW_PASSWORD)
    assert AuditEntry.objects.get(action="person.change_password").changes == {"replaced_one_time": False}


def test_every_page_links_the_password_change_page_from_the_persons_name(member_client):
    html = member_client.get(reverse("history:home")).content.decode()

    assert f'href="{reverse("password_change")}" title="Change your password">member</a>' in html


def test_a_forgotten_password_is_reset_by_an_admin_and_there_is_no_email_reset_page(client):
    """The product has no email reset: an Admin gives a one-time password (People). Django's reset pages
    (its admin's look, reachable by no link, mailing whoever typed an address) are not served."""
    login = client.get(reverse("login")).content.decode()

    assert "Forgot your password?" in login and "one-time password" in login
    for path in ("/accounts/password_reset/", "/accounts/password_reset/done/", "/accounts/reset/done/"):
        assert client.get(path).status_code == 404, path
    assert client.post("/accounts/password_reset/", {"email": "ann@example.com"}).status_code == 404
