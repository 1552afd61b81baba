"""Fixtures shared by every test module (loaded with `-p tests.fixtures`, see pyproject.toml)."""

import pytest

# Django models are imported inside the fixtures: this plugin loads before Django is set up.

PASSWORD = "correct-horse-battery-staple"


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
