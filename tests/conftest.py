"""Fixtures shared by the whole suite. Keep them few and generic; a module's own fixtures live beside it."""

import pytest
from django.conf import settings

from tasks.models import Credential
from tests.factories import PASSWORD


def pytest_collection_modifyitems(items):
    """Tests marked `long` first (a stable sort keeps the rest in their order): pytest-xdist hands tests out
    in this order, so a minute-long test started near the end would leave one worker running it alone."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


SANDBOX_PATH = "/sandbox/apis/v1/dataforseo"


def sandbox_api_key() -> str:
    """The key the stand-in upstream accepts."""
    keys = getattr(settings, "SANDBOX_API_KEYS", None)
    return keys[0] if keys else "sandbox-key"


@pytest.fixture
def user(db, django_user_model):
    """A team member without admin rights, in the Members group where that role exists; password PASSWORD."""
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user(username="user", email="user@example.com", password=PASSWORD)
    members = Group.objects.filter(name="Members").first()
    if members is not None:
        user.groups.add(members)
    return user


@pytest.fixture
def credential(db):
    """The default credential: AIsa, pointing at the stand-in as the test client reaches it."""
    credential = Credential(
        name="Stand-in (AIsa)",
        kind=Credential.Kind.AISA,
        base_url=f"http://testserver{SANDBOX_PATH}",
        is_default=True,
    )
    credential.set_secret("sandbox-key")
    credential.save()
    return credential


@pytest.fixture
def live_credential(credential, live_server):
    """The default credential, pointed at the stand-in served over real HTTP by `live_server`."""
    credential.base_url = f"{live_server.url}{SANDBOX_PATH}"
    credential.set_secret(sandbox_api_key())
    credential.save()
    return credential


def _person(django_user_model, username: str, group: str):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user(username=username, password=PASSWORD)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def member_user(db, django_user_model):
    """A Member: submits tasks, sees all tasks, templates and tags."""
    return _person(django_user_model, "member", "Members")


@pytest.fixture
def team_admin(db, django_user_model):
    """An Admin (the role, not a Django superuser): also spend, budgets, credentials, people, audit."""
    return _person(django_user_model, "team-admin", "Admins")


@pytest.fixture
def member_client(client, member_user):
    client.force_login(member_user)
    return client


@pytest.fixture
def team_admin_client(client, team_admin):
    client.force_login(team_admin)
    return client
