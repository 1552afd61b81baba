"""Every page names the favicon, and /favicon.ico (asked for by pages that name none) finds it too."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_pages_link_the_favicon(client, member_client):
    assert 'rel="icon" href="/static/img/favicon.svg"' in client.get(reverse("login")).content.decode()
    assert (
        'rel="icon" href="/static/img/favicon.svg"'
        in member_client.get(reverse("history:task_list")).content.decode()
    )


def test_favicon_ico_redirects_to_the_svg_without_logging_in(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 301
    assert response["Location"] == "/static/img/favicon.svg"
