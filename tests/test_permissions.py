"""The permission matrix: every URL of the project (the builder's and history's too) × every role.

- Anonymous: redirected to the login page, except the login and password-reset pages and the
  upstream's callback endpoints (static files are served by WhiteNoise, outside the URL resolver).
- Someone with no role: 403 on every product page and fragment.
- Member: 403 on every spend, budget, credential, people and audit page and fragment — htmx requests
  and POSTs included — and never a 403 (nor a 500) elsewhere.
- Admin: no 403 and no 500 anywhere.

The Django admin (its own login and staff rules) is covered in test_admin.py; the stand-in upstream under
/sandbox/ has its own authentication, like the real API.
"""

import re

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse, set_script_prefix

from tests.factories import make_user
from tests.url_routes import make_url_objects, project_routes, url_for

pytestmark = pytest.mark.django_db

NO_LOGIN_NEEDED = {
    "login",
    "submission:callback_pingback",
    "submission:callback_postback",
    "favicon",
}
# Pages any logged-in person may open, whatever their role.
ANY_ROLE = {"history:home", "logout", "password_change", "password_change_done"}

ROUTES = project_routes()
# The admins' areas: spend (with budgets) and team (credentials, people, audit); the sending queue.
ADMIN_ONLY = {r.name for r in ROUTES if r.name.startswith(("spend:", "team:"))} | {"submission:queue"}
ADMIN_ONLY |= {"monitors:alert_list"}  # alert deliveries and the budgets' alert destinations
PRODUCT_ROUTES = [r for r in ROUTES if r.name not in NO_LOGIN_NEEDED]
ADMIN_ROUTES = [r for r in ROUTES if r.name in ADMIN_ONLY]
OTHER_ROUTES = [r for r in PRODUCT_ROUTES if r.name not in ADMIN_ONLY]
ROLE_ROUTES = [r for r in OTHER_ROUTES if r.name not in ANY_ROLE]
HTMX = {"HX-Request": "true"}


@pytest.fixture
def objects(team_admin):
    return make_url_objects()


def test_the_matrix_sees_the_admin_pages_and_the_other_areas():
    names = {r.name for r in ROUTES}
    assert {
        "spend:page",
        "spend:export",
        "spend:balance",
        "spend:budget_list",
        "team:credential_list",
        "team:people",
        "team:audit_log",
    } <= names
    assert "history:home" in names and "login" in names


@pytest.mark.parametrize("route", PRODUCT_ROUTES, ids=str)
@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_anonymous_is_sent_to_the_login_page(client, objects, route, method, headers):
    url = url_for(route, objects)

    response = getattr(client, method)(url, headers=headers)

    assert response.status_code == 302, url
    assert response["Location"].startswith(reverse("login") + "?next="), url


@pytest.mark.parametrize("route", [r for r in ROUTES if r.name in NO_LOGIN_NEEDED], ids=str)
def test_login_and_callbacks_need_no_login(client, objects, route):
    response = client.get(url_for(route, objects))

    assert not (response.status_code == 302 and response["Location"].startswith(reverse("login") + "?next="))
    assert response.status_code < 500


@pytest.fixture
def no_role_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user(username="nobody", password="unused-password"))
    return client


@pytest.mark.parametrize("route", ADMIN_ROUTES, ids=str)
@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_a_member_gets_403_on_every_admin_page_and_fragment(member_client, objects, route, method, headers):
    url = url_for(route, objects)

    response = getattr(member_client, method)(url, {"role": "Admins"}, headers=headers)

    assert response.status_code == 403, url


@pytest.mark.parametrize("route", ADMIN_ROUTES + ROLE_ROUTES, ids=str)
@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_someone_without_a_role_gets_403_on_every_product_page(no_role_client, objects, route, headers):
    url = url_for(route, objects)

    response = no_role_client.get(url, headers=headers)

    assert response.status_code in (403, 405), url


@pytest.mark.parametrize("route", ADMIN_ROUTES, ids=str)
def test_someone_without_a_role_cannot_post_to_admin_pages(no_role_client, objects, route):
    response = no_role_client.post(url_for(route, objects), {"role": "Admins"})

    assert response.status_code == 403


@pytest.mark.parametrize("route", OTHER_ROUTES, ids=str)
def test_a_member_reaches_the_rest_of_the_product(member_client, objects, route):
    url = url_for(route, objects)

    response = member_client.get(url)

    assert response.status_code != 403, url
    assert response.status_code < 500, url


@pytest.mark.parametrize("route", [r for r in PRODUCT_ROUTES if r.name != "logout"], ids=str)
@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_an_admin_reaches_every_page_and_fragment(team_admin_client, objects, route, headers):
    url = url_for(route, objects)

    response = team_admin_client.get(url, headers=headers)

    assert response.status_code != 403, url
    assert response.status_code < 500, url


def test_a_member_promoted_to_admin_gains_access_and_loses_it_again(member_client, member_user):
    assert member_client.get(reverse("spend:page")).status_code == 403

    member_user.groups.add(Group.objects.get(name="Admins"))
    assert member_client.get(reverse("spend:page")).status_code == 200

    member_user.groups.remove(Group.objects.get(name="Admins"))
    assert member_client.get(reverse("spend:page")).status_code == 403


def test_the_navigation_shows_admin_pages_to_admins_only(member_user, team_admin):
    admin_links = [
        reverse(name)
        for name in (
            "spend:page",
            "spend:budget_list",
            "team:credential_list",
            "team:people",
            "team:audit_log",
        )
    ]
    member, admin = Client(), Client()
    member.force_login(member_user)
    admin.force_login(team_admin)

    member_html = member.get(reverse("history:home")).content.decode()
    admin_html = admin.get(reverse("history:home")).content.decode()

    for link in admin_links:
        assert f'href="{link}"' not in member_html
        assert f'href="{link}"' in admin_html


def _main_nav(client) -> list[tuple[str, str]]:
    """The main navigation's links as (label, href), in order."""
    html = client.get(reverse("history:home")).content.decode()
    nav = html[html.index('<nav class="mainnav"') : html.index("</nav>", html.index('<nav class="mainnav"'))]
    return re.findall(r'<a href="([^"]*)">([^<]*)</a>', nav)


MEMBER_NAV = ["New task", "Tasks", "Templates", "Batches", "Monitors", "Tags", "Visibility"]
ADMIN_NAV = [*MEMBER_NAV, "Spend", "Budgets", "Credentials", "People", "Audit log", "Queue", "Alerts"]


def test_each_role_sees_the_links_its_permissions_allow_in_order(member_user, team_admin):
    """The navigation is built once per set of permissions (tasks/context_processors.py); each person still
    sees exactly their own links, and each link opens its page."""
    nobody = make_user("no-role")
    expected = {
        nobody: ["New task", "Tasks", "Templates", "Tags"],
        member_user: MEMBER_NAV,
        team_admin: ADMIN_NAV,
    }
    for _round in range(2):  # the second round is served from the cache
        for person, labels in expected.items():
            client = Client()
            client.force_login(person)
            links = _main_nav(client)
            assert [label for _href, label in links] == labels, person.username
            if person is team_admin:
                for href, label in links:
                    assert client.get(href).status_code == 200, label


def test_the_navigation_follows_a_change_of_role_and_the_script_prefix(member_client, member_user):
    assert [label for _href, label in _main_nav(member_client)] == MEMBER_NAV

    member_user.groups.add(Group.objects.get(name="Admins"))
    assert [label for _href, label in _main_nav(member_client)] == ADMIN_NAV

    member_user.groups.remove(Group.objects.get(name="Admins"))
    assert [label for _href, label in _main_nav(member_client)] == MEMBER_NAV

    # Served under a path prefix (SCRIPT_NAME behind a proxy, which WSGIHandler sets as the script prefix;
    # the test client does not, so the test sets it): every link carries it, and only while it is set.
    set_script_prefix("/llm/")
    try:
        hrefs = [href for href, _label in _main_nav(member_client)]
    finally:
        set_script_prefix("/")
    assert hrefs and all(href.startswith("/llm/") for href in hrefs), hrefs
    assert _main_nav(member_client)[0] == (reverse("builder:new"), "New task")
